package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Writeback retries a failing backing device with a growing back-off (100 ms, doubling up to 5 s), also while clients
 * keep writing: a retry storm would hammer a sick device and flood the log with one WARN per attempt.
 */
class WritebackRetryTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final long FIRST_BACKOFF_MILLIS = 100;
    private static final int ATTEMPTS = 5;
    /** A gap between two attempts is measured by polling, so it can read this much short of the real one. */
    private static final long POLL_SLACK_MILLIS = 5;

    @Test
    void failedAttemptsAreSpacedByADoublingBackOffWhileClientsWrite() throws IOException {
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), backing,
                CacheHarness.quietOptions())) {
            long[] attemptMillis = new long[ATTEMPTS];
            int seen = 0;
            long id = 1;
            long deadline = System.nanoTime() + CacheHarness.TIMEOUT.toNanos();
            while (seen < ATTEMPTS) {
                // Every client write adds a kset for writeback: none of them may cut a back-off short.
                harness.writePattern((id * 4096) % BACKING_SIZE, 4096, id, Durability.FUA);
                id++;
                long errors = harness.cache.status().writeback().errors();
                long now = TimeUnit.NANOSECONDS.toMillis(System.nanoTime());
                while (seen < Math.min(errors, ATTEMPTS)) {
                    attemptMillis[seen++] = now;
                }
                assertThat(System.nanoTime()).as("%d failed attempts within %s", ATTEMPTS, CacheHarness.TIMEOUT)
                        .isLessThan(deadline);
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
            }

            // From the second gap on: the first attempt may come while the first (cold) write still runs, and be seen late.
            for (int k = 2; k < ATTEMPTS; k++) {
                long expected = FIRST_BACKOFF_MILLIS << (k - 1);
                assertThat(attemptMillis[k] - attemptMillis[k - 1])
                        .as("gap before attempt %d (attempts at %s ms, %d client writes)", k + 1,
                                Arrays.toString(attemptMillis), id - 1)
                        .isGreaterThanOrEqualTo(expected - POLL_SLACK_MILLIS);
            }
        }
    }
}
