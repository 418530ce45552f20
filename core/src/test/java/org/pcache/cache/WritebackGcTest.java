package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.LatencyEngine;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Writeback, GC, drain and cache-full back-pressure seen from the library API. */
class WritebackGcTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final int MIB = 1 << 20;

    @Test
    void drainWritesEverythingBackAndAReformattedCacheStillReadsIt() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            for (int i = 0; i < 64; i++) {
                harness.writePattern((long) i * MIB, MIB, i + 1, Durability.BUFFERED);
            }
            CacheHarness.await(harness.cache.drainAsync());
            CacheStatus status = harness.cache.status();
            assertThat(status.dirtyTail()).isEqualTo(status.keyHead());
            assertThat(status.writeback().dirtyBytes()).isZero();
            assertThat(status.writeback().bytesWritten()).isEqualTo(64L * MIB);

            Pcache fresh = harness.reformat();
            assertThat(fresh.status().keyHead().toString()).isEqualTo("0:0");
            for (int i = 0; i < 64; i++) {
                assertThat(harness.readIds((long) i * MIB, MIB)).as("MiB " + i).containsOnly((long) i + 1);
            }
        }
    }

    @Test
    void gcPercentZeroEmptiesTheCacheAfterADrain() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            harness.cache.setGcPercent(0);
            for (int i = 0; i < 48; i++) {
                harness.writePattern((long) i * MIB, MIB, i + 1, Durability.BUFFERED);
            }
            CacheHarness.await(harness.cache.drainAsync());
            CacheStatus empty = harness.awaitStatus("key_tail == key_head",
                    status -> status.keyTail().equals(status.keyHead()));
            assertThat(empty.gc().ksetsReclaimed()).isPositive();
            assertThat(harness.readIds(0, MIB)).containsOnly(1L);
        }
    }

    @ParameterizedTest(name = "gc_percent={0}")
    @ValueSource(ints = {0, 42, 90})
    void gcPercentIsPersistedAcrossReopen(int percent) throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            harness.cache.setGcPercent(percent);
            assertThat(harness.cache.status().gcPercent()).isEqualTo(percent);
            assertThat(harness.reopen().status().gcPercent()).isEqualTo(percent);
        }
    }

    @ParameterizedTest(name = "gc_percent={0}")
    @ValueSource(ints = {-1, 91, 300})
    void gcPercentOutOfRangeIsRefusedAndNothingChanges(int percent) throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            assertThatThrownBy(() -> harness.cache.setGcPercent(percent))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining(Integer.toString(percent));
            assertThat(harness.reopen().status().gcPercent()).isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);
        }
    }

    @Test
    void aFailingBackingDeviceShowsInStatusAndWritebackCompletesOnceItRecovers() throws IOException {
        FaultEngine faulty = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(faulty, CacheHarness.quietOptions())) {
            for (int i = 0; i < 32; i++) {
                harness.writePattern((long) i * MIB, MIB, i + 1, Durability.BUFFERED);
            }
            CompletableFuture<Void> drained = harness.cache.drainAsync();
            CacheStatus failing = harness.awaitStatus("writeback errors", status -> status.writeback().errors() > 2);
            assertThat(failing.writeback().lastError()).contains("IO_ERROR");
            assertThat(failing.writeback().state()).isEqualTo(WorkerState.RUNNING);
            assertThat(drained).isNotDone();
            harness.writePattern(40L * MIB, MIB, 99, Durability.FUA);

            faulty.clear();
            CacheHarness.await(drained);
            // Only the FUA write issued after the drain may still be dirty; writeback may or may not have reached it.
            assertThat(harness.cache.status().writeback().dirtyBytes()).isLessThanOrEqualTo((long) MIB);
            MemorySegment back = MemorySegment.ofArray(new byte[MIB]);
            harness.backing.read(31L * MIB, back);
            assertThat(SectorPattern.idOf(back, 0, 31L * MIB)).isEqualTo(32);
        }
    }

    @Test
    void aFullCacheMakesWritesWaitAndResumesThemAsGcFreesSegments() throws IOException {
        LatencyEngine slow = new LatencyEngine(new MemoryEngine(BACKING_SIZE))
                .delay(EngineOp.WRITE, Duration.ofMillis(2));
        try (CacheHarness harness = CacheHarness.mapped(slow, CacheHarness.quietOptions())) {
            List<CompletableFuture<Void>> writes = new ArrayList<>();
            byte[] block = new byte[4 * MIB];
            long volume = 3 * CacheHarness.CACHE_SIZE;
            for (long written = 0; written < volume; written += block.length) {
                long off = written % BACKING_SIZE;
                writes.add(harness.cache.writeAsync(off, MemorySegment.ofArray(block), Durability.BUFFERED));
            }
            CacheHarness.await(CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)));
            CacheStatus status = harness.cache.status();
            assertThat(status.counters().deferred()).as("writes that waited for space").isPositive();
            assertThat(status.counters().waiting()).isZero();
            assertThat(status.gc().ksetsReclaimed()).isPositive();
        }
    }
}
