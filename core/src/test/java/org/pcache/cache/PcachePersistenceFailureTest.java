package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.FaultyPmemRegion;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Fail-stop on a failed persistence operation: after a failed msync Linux may have dropped the dirty pages, so a later
 * success proves nothing. The first failed drain fails the cache for good: no kset (nor anything else) is written
 * after it, writes, flushes and drains get {@link CacheFailedException}, reads of what is in the cache go on, status
 * says failed and why, and the next open replays to the last durable state.
 */
class PcachePersistenceFailureTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final long MIB = 1 << 20;
    private static final String EIO = "msync: Input/output error";

    @Test
    void aFailedMsyncFailsTheCacheForGoodAndTheNextOpenReplaysToTheLastDurableState() throws IOException {
        CrashSimPmemRegion sim = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        FaultyPmemRegion faulty = new FaultyPmemRegion(sim);
        try (CacheHarness harness = CacheHarness.on(faulty, new MemoryEngine(BACKING_SIZE),
                CacheHarness.quietOptions())) {
            harness.writePattern(0, 8192, 1, Durability.FUA);
            harness.writePattern(MIB, 4096, 2, Durability.BUFFERED);
            CachePos durableHead = harness.cache.status().keyHead();

            // The kset close's drain, not one of writeback's, which may still be writing back the first kset.
            faulty.failDrain("closeLocked", new UncheckedIOException(new IOException(EIO)));
            assertThatThrownBy(() -> harness.writePattern(2 * MIB, 4096, 3, Durability.FUA))
                    .isInstanceOf(CacheFailedException.class).hasMessageContaining(EIO);
            long stores = sim.storeCount();
            long drains = sim.drainCount();

            CacheStatus failed = harness.cache.status();
            assertThat(failed.health().phase()).isEqualTo(CacheHealth.Phase.FAILED);
            assertThat(failed.health().cause()).contains(EIO);
            assertThat(failed.health().toString()).startsWith("failed: ");
            assertThat(failed.keyHead()).as("no kset after the failed drain").isEqualTo(durableHead);

            // The next drain would succeed: trusting it is what fail-stop forbids.
            assertThatThrownBy(() -> harness.writePattern(3 * MIB, 4096, 4, Durability.FUA))
                    .isInstanceOf(CacheFailedException.class).hasMessageContaining(EIO);
            assertThatThrownBy(() -> harness.writePattern(3 * MIB, 4096, 5, Durability.BUFFERED))
                    .isInstanceOf(CacheFailedException.class);
            assertThatThrownBy(() -> CacheHarness.await(harness.cache.writeZeroesAsync(4 * MIB, 4096,
                    Durability.FUA))).isInstanceOf(CacheFailedException.class);
            assertThatThrownBy(() -> CacheHarness.await(harness.cache.flushAsync()))
                    .isInstanceOf(CacheFailedException.class);
            assertThatThrownBy(() -> CacheHarness.await(harness.cache.drainAsync()))
                    .isInstanceOf(CacheFailedException.class);
            assertThatThrownBy(() -> harness.cache.setGcPercent(0)).isInstanceOf(CacheFailedException.class);

            assertThat(harness.readIds(0, 8192)).as("durable data still reads").containsOnly(1L);
            assertThat(harness.readIds(MIB, 4096)).as("acknowledged data still reads").containsOnly(2L);
            harness.awaitStatus("writeback and GC stopped", status -> status.writeback().state()
                    .equals(WorkerState.STOPPED) && status.gc().state().equals(WorkerState.STOPPED));
            harness.cache.close();
            assertThat(sim.storeCount()).as("nothing stored after the failure").isEqualTo(stores);
            assertThat(sim.drainCount()).as("nothing drained after the failure").isEqualTo(drains);

            sim.powerCut(13);
            Pcache reopened = harness.openAgain();
            CacheStatus replayed = reopened.status();
            assertThat(replayed.health()).isEqualTo(CacheHealth.HEALTHY);
            assertThat(replayed.keyHead()).as("replayed to the last durable kset").isEqualTo(durableHead);
            assertThat(harness.readIds(0, 8192)).containsOnly(1L);
            assertThat(harness.readIds(2 * MIB, 4096)).as("the write that met the failure was never acknowledged")
                    .containsOnly(SectorPattern.ZERO);
            harness.writePattern(3 * MIB, 4096, 6, Durability.FUA);
            assertThat(harness.readIds(3 * MIB, 4096)).containsOnly(6L);
        }
    }

    @Test
    void aRequestWaitingForSpaceWhenTheCacheFailsFailsWithIt() throws IOException {
        CrashSimPmemRegion sim = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        FaultyPmemRegion faulty = new FaultyPmemRegion(sim);
        try (CacheHarness harness = CacheHarness.on(faulty, new MemoryEngine(BACKING_SIZE),
                CacheHarness.quietOptions())) {
            faulty.failDrain(null, new UncheckedIOException(new IOException(EIO)));
            MemorySegment data = MemorySegment.ofArray(new byte[4096]);
            assertThatThrownBy(() -> CacheHarness.await(harness.cache.writeAsync(0, data, Durability.FUA)))
                    .isInstanceOf(CacheFailedException.class);
            assertThat(harness.cache.status().counters().waiting()).isZero();
        }
    }
    @Test
    void aSigbusFromTheRegionFailsTheCacheWithItsCauseAndTheNextOpenReplaysToTheLastDurableState() throws IOException {
        CrashSimPmemRegion sim = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        FaultyPmemRegion faulty = new FaultyPmemRegion(sim);
        try (CacheHarness harness = CacheHarness.on(faulty, new MemoryEngine(BACKING_SIZE),
                CacheHarness.quietOptions())) {
            harness.writePattern(0, 8192, 1, Durability.FUA);
            CachePos durableHead = harness.cache.status().keyHead();

            // A truncated file, a full tmpfs or a poisoned page: the JVM raises the SIGBUS as an InternalError.
            faulty.faultFrom(0);
            assertThatThrownBy(() -> harness.writePattern(MIB, 4096, 2, Durability.FUA))
                    .isInstanceOf(CacheFailedException.class);
            assertThat(faulty.accessFaulted()).isDone();

            CacheStatus failed = harness.cache.status();
            assertThat(failed.health().phase()).isEqualTo(CacheHealth.Phase.FAILED);
            assertThat(failed.health().cause()).contains("unsafe memory access");
            assertThat(failed.keyHead()).as("no kset after the fault").isEqualTo(durableHead);
            assertThatThrownBy(() -> harness.writePattern(2 * MIB, 4096, 3, Durability.BUFFERED))
                    .isInstanceOf(CacheFailedException.class);
            assertThatThrownBy(() -> CacheHarness.await(harness.cache.flushAsync()))
                    .isInstanceOf(CacheFailedException.class);
            harness.cache.close();

            sim.powerCut(17);
            faulty.faultFrom(Long.MAX_VALUE); // the cause fixed (space freed, the file restored) before the restart
            Pcache reopened = harness.openAgain();
            assertThat(reopened.status().health()).isEqualTo(CacheHealth.HEALTHY);
            assertThat(reopened.status().keyHead()).as("replayed to the last durable kset").isEqualTo(durableHead);
            assertThat(harness.readIds(0, 8192)).containsOnly(1L);
            assertThat(harness.readIds(MIB, 4096)).as("the write that met the fault was never acknowledged")
                    .containsOnly(SectorPattern.ZERO);
        }
    }
}
