package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Writeback retries a failing backing device with a growing back-off (100 ms, doubling up to 5 s), also while clients
 * keep writing: a retry storm would hammer a sick device and flood the log with one WARN per attempt.
 */
class WritebackRetryTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int WRITES = 2_000;
    /** Generous: as many attempts as a back-off that never grew past its 100 ms start would allow, plus slack. */
    private static final long MIN_BACKOFF_MILLIS = 100;

    @Test
    void failingBackingDeviceIsRetriedWithBackOffWhileClientsWrite() throws IOException {
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), backing,
                CacheHarness.quietOptions())) {
            long started = System.nanoTime();
            for (long id = 1; id <= WRITES; id++) {
                harness.writePattern((id * 4096) % BACKING_SIZE, 4096, id, Durability.FUA);
            }
            long elapsedMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);

            long attempts = harness.cache.status().writeback().errors();

            assertThat(attempts).as("failed writeback attempts during " + WRITES + " FUA writes in " + elapsedMillis
                    + " ms").isLessThanOrEqualTo(5 + elapsedMillis / MIN_BACKOFF_MILLIS);
        }
    }
}
