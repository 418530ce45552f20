package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.KsetOnMedia;

import java.lang.foreign.MemorySegment;

import static org.assertj.core.api.Assertions.assertThat;

class DataRunsTest {

    private static final int SECTOR = 512;

    @Test
    void nearbyRangesBecomeOneFlush() {
        DataRuns runs = new DataRuns();
        runs.add(0, SECTOR);
        runs.add(SECTOR, SECTOR);
        runs.add(DataRuns.MERGE_GAP + 2 * SECTOR, SECTOR);
        runs.add(4 * DataRuns.MERGE_GAP, SECTOR);
        runs.add(3 * DataRuns.MERGE_GAP, SECTOR);

        assertThat(runs.count()).isEqualTo(2);
    }

    @Test
    void flushedRunsAreDurableAfterTheDrain() {
        try (CrashSimPmemRegion region = TestRegions.crashSim(8 * DataRuns.MERGE_GAP)) {
            DataRuns runs = new DataRuns();
            long gap = DataRuns.MERGE_GAP;
            long[] offsets = {0, SECTOR, 3 * gap, 6 * gap, 3 * gap - SECTOR};
            MemorySegment data = MemorySegment.ofArray(new byte[SECTOR]);
            data.fill((byte) 0x5A);
            for (long offset : offsets) {
                region.write(offset, data, 0, SECTOR);
                runs.add(offset, SECTOR);
            }
            long flushesBefore = region.flushCount();

            runs.flush(region);
            region.drain();

            assertThat(region.flushCount() - flushesBefore).isEqualTo(runs.count()).isEqualTo(3);
            assertThat(region.pendingLineCount()).isZero();
        }
    }

    @Test
    void moreRangesThanAKsetHasKeysStillCoverEveryOne() {
        int ranges = KsetOnMedia.KEYS_MAX + 3;
        long stride = 2 * DataRuns.MERGE_GAP;
        try (CrashSimPmemRegion region = TestRegions.crashSim(stride * ranges)) {
            DataRuns runs = new DataRuns();
            MemorySegment data = MemorySegment.ofArray(new byte[SECTOR]);
            data.fill((byte) 0x33);
            for (int i = 0; i < ranges; i++) {
                region.write(i * stride, data, 0, SECTOR);
                runs.add(i * stride, SECTOR);
            }

            runs.flush(region);
            region.drain();

            assertThat(runs.count()).isEqualTo(KsetOnMedia.KEYS_MAX);
            assertThat(region.pendingLineCount()).isZero();
        }
    }

    @Test
    void clearForgetsEveryRun() {
        DataRuns runs = new DataRuns();
        runs.add(0, SECTOR);
        runs.clear();

        assertThat(runs.count()).isZero();
    }
}
