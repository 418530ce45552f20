package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.MappedPmemRegion;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A data segment is freed when its last reference goes, with its generation bumped first, and hands the key cleaner
 * the ranges of exactly the records released in the generation that ended.
 */
class SegmentMapTest {

    @Test
    void aFreedSegmentReportsTheRangesOfTheRecordsReleasedInItsGeneration() throws Exception {
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-segmap-", ".img");
        Files.delete(file);
        try (MappedPmemRegion region = TestRegions.mapped(file, CacheDeviceLayout.MIN_SIZE)) {
            CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(false,
                    CacheMode.WRITEBACK.onMedia(), CacheOptions.GC_PERCENT_DEFAULT));
            List<long[]> freed = new ArrayList<>();
            SegmentMap segments = new SegmentMap(device, freed::add);

            CacheSegment seg = segments.allocateData();
            long firstGen = seg.gen();
            seg.retain(3); // a data head and two records
            segments.releaseRecord(record(seg, 1 << 20, 4096));
            segments.releaseRecord(record(seg, 8 << 20, 512));
            assertThat(freed).as("freed while the head still holds it").isEmpty();
            segments.release(seg);

            assertThat(freed).containsExactly(new long[] {1 << 20, 4096, 8 << 20, 512});
            assertThat(seg.gen()).isEqualTo(firstGen + 1);
            assertThat(segments.usedCount()).isZero();

            seg.retain();
            segments.markUsed(seg.id());
            segments.releaseRecord(record(seg, 0, 1024));
            assertThat(freed).hasSize(2);
            assertThat(freed.get(1)).as("only the next generation's record").containsExactly(0, 1024);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void usesTellLogFromDataFromFreeAndALogSegmentFreedByGcIsFreeAgain() throws Exception {
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-segmap-", ".img");
        Files.delete(file);
        try (MappedPmemRegion region = MappedPmemRegion.open(file, CacheDeviceLayout.MIN_SIZE)) {
            CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(false,
                    CacheMode.WRITEBACK.onMedia(), CacheOptions.GC_PERCENT_DEFAULT));
            SegmentMap segments = new SegmentMap(device, ranges -> { });
            segments.markLog(0);
            CacheSegment data = segments.allocateData();
            CacheSegment log = segments.allocateLog();

            SegmentUse[] uses = segments.uses();
            assertThat(uses[0]).isEqualTo(SegmentUse.LOG);
            assertThat(uses[data.id()]).isEqualTo(SegmentUse.DATA);
            assertThat(uses[log.id()]).isEqualTo(SegmentUse.LOG);
            assertThat(uses).hasSize(segments.count()).filteredOn(u -> u == SegmentUse.FREE)
                    .hasSize(segments.count() - 3);

            segments.freeLog(log);
            assertThat(segments.uses()[log.id()]).isEqualTo(SegmentUse.FREE);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static CacheKey record(CacheSegment seg, long off, int len) {
        CacheKey key = new CacheKey(off, len, 0);
        key.place(seg, 0, seg.gen());
        return key;
    }
}
