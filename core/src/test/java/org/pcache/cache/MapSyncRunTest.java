package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.TestRegions;

import java.lang.foreign.MemorySegment;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Proves that the MAP_SYNC run of the cache tests (core's second surefire execution, the only one that runs this
 * class) really ran them in MAP_SYNC mode: the harness's mapped region is a MAP_SYNC one, and the simulator makes a
 * flushed line durable without a drain.
 */
class MapSyncRunTest {

    @Test
    void theCacheTestsOfThisRunUseMapSyncRegions() throws Exception {
        assertThat(TestRegions.mode()).isEqualTo(PersistenceMode.MAP_SYNC);
        try (CacheHarness harness = CacheHarness.mapped(8L << 20, CacheHarness.quietOptions())) {
            assertThat(harness.region.mode()).isEqualTo(PersistenceMode.MAP_SYNC);
        }
        try (CrashSimPmemRegion sim = TestRegions.crashSim(PmemRegion.LINE_SIZE)) {
            sim.write(0, MemorySegment.ofArray(new byte[] {7, 7, 7, 7, 7, 7, 7, 7}), 0, Long.BYTES);
            sim.flush(0, Long.BYTES);
            sim.powerCut(1);
            assertThat(sim.durableBytes(0, Long.BYTES)).containsOnly((byte) 7);
        }
    }
}
