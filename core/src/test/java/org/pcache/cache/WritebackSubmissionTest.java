package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.GateEngine;
import org.pcache.backing.MemoryEngine;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Writeback sends the backing device only what it must: a kset that holds nothing dirty (only miss fills) is passed
 * without flushing the backing device, and writes that outlive the writeback timeout are waited for, never sent a
 * second time while the first ones are still in flight.
 */
class WritebackSubmissionTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final long BACKING_ID = 3_131;
    private static final int LEN = 64 << 10;

    @Test
    void aKsetOfOnlyCleanKeysDoesNotFlushTheBackingDevice() throws Exception {
        FaultEngine counting = new FaultEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), counting,
                CacheHarness.quietOptions())) {
            assertThat(harness.readIds(1L << 20, LEN)).containsOnly(BACKING_ID);
            harness.awaitMissFills();
            harness.cache.drain();

            assertThat(harness.cache.status().writeback().ksets()).as("the clean kset was passed").isEqualTo(1);
            assertThat(counting.seen(EngineOp.FLUSH)).as("backing flushes for a kset of miss fills").isZero();
            assertThat(counting.seen(EngineOp.WRITE)).isZero();

            harness.writePattern(2L << 20, LEN, 1, Durability.BUFFERED);
            harness.cache.drain();
            assertThat(counting.seen(EngineOp.FLUSH)).as("a kset with dirty keys is flushed").isEqualTo(1);
        }
    }

    @Test
    void writesPastTheTimeoutAreWaitedForAndNeverSentAgainWhileInFlight() throws Exception {
        MemoryEngine disk = new MemoryEngine(BACKING_SIZE);
        GateEngine gate = new GateEngine(disk, 1);
        FaultEngine counting = new FaultEngine(gate);
        CacheOptions options = CacheHarness.quietOptions().withWritebackTimeout(Duration.ofMillis(20));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), counting,
                options)) {
            try {
                harness.writePattern(0, LEN, 1, Durability.FUA);
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("writeback's write is held").isTrue();

                CacheStatus stalled = harness.awaitStatus("three timeouts reported",
                        status -> status.writeback().errors() >= 3);
                assertThat(counting.seen(EngineOp.WRITE)).as("writes sent after three timeouts").isEqualTo(1);
                assertThat(stalled.writeback().lastError()).contains("in flight");
            } finally {
                gate.open(); // the backing device's stop waits for every request it took
            }
            harness.cache.drain();
            assertThat(counting.seen(EngineOp.WRITE)).as("writes sent in all").isEqualTo(1);
            assertThat(counting.seen(EngineOp.FLUSH)).isEqualTo(1);
            MemorySegment onDisk = MemorySegment.ofArray(new byte[LEN]);
            disk.read(0, onDisk, error -> {
                if (error != null) {
                    throw new UncheckedIOException(error);
                }
            });
            for (long at = 0; at < LEN; at += SectorPattern.SECTOR) {
                assertThat(SectorPattern.idOf(onDisk, at, at)).as("backing sector at " + at).isEqualTo(1);
            }
        }
    }
}
