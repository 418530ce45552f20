package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.HexFormat;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class CacheDeviceTest {
    private static final long MIB = 1024 * 1024;
    private static final int SEGS_512_MIB = 31;

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE);

    @AfterEach
    void closeRegion() {
        region.close();
    }

    private CacheDevice open() throws Exception {
        return CacheDevice.open(region, CacheDevice.Options.defaults());
    }

    @Test
    void blankDeviceIsFormattedWithDmPcacheDefaults() throws Exception {
        CacheDevice device = open();

        assertThat(device.formatted()).isTrue();
        assertThat(device.physicalSegmentCount()).isEqualTo(SEGS_512_MIB);
        assertThat(device.segmentCount()).isEqualTo(SEGS_512_MIB);
        assertThat(device.superblockFlags()).isZero();
        assertThat(device.cacheInfo()).isEqualTo(new CacheInfo(0, SEGS_512_MIB, false, true, 0, 70, 0));
        assertThat(device.keyTail()).isEqualTo(new CachePos(0, 0));
        assertThat(device.dirtyTail()).isEqualTo(new CachePos(0, 0));
        for (int seg = 0; seg < SEGS_512_MIB; seg++) {
            assertThat(device.segmentGen(seg)).isZero();
            assertThat(device.physicalSegmentId(seg)).isEqualTo(seg);
        }
        assertThat(device.region()).isSameAs(region);
    }

    @Test
    void formatLeavesEverythingDurable() throws Exception {
        open();

        assertThat(region.pendingLineCount()).isZero();
    }

    @Test
    void dataOffsetIsTwelveKibIntoThePhysicalSegment() throws Exception {
        CacheDevice device = open();

        assertThat(device.dataOffset(0)).isEqualTo(20 * 1024 + 12 * 1024);
        assertThat(device.dataOffset(5)).isEqualTo(20 * 1024 + 5 * 16 * MIB + 12 * 1024);
    }

    @Test
    void formatWritesTheSuperblockAndCacheInfoDmPcacheWrites() throws Exception {
        open();
        HexFormat hex = HexFormat.of();

        // Same bytes as the golden records (31 segments; cache_info seq 1 in slot 1, INIT_DONE, gc_percent 70),
        // and the same cache_info again with seq 2 in slot 0.
        assertThat(hex.formatHex(region.durableBytes(CacheDeviceLayout.SUPERBLOCK_OFFSET, 24)))
                .isEqualTo("42777f0400000000ef96c596fa5eb0651f00000000000000");
        assertThat(hex.formatHex(region.durableBytes(CacheDeviceLayout.CACHE_INFO_OFFSET + 4096, 24)))
                .isEqualTo("6dfecadd01000000000000001f0000008211000000000000");
        assertThat(MetaHeader.seq(MemorySegment.ofArray(region.durableBytes(CacheDeviceLayout.CACHE_INFO_OFFSET, 24))))
                .isEqualTo(2);
    }

    @Test
    void formatLinksTheSegmentsInAscendingOrder() throws Exception {
        open();
        OnMediaEditor media = new OnMediaEditor(region);

        for (int seg = 0; seg < SEGS_512_MIB - 1; seg++) {
            SegmentInfoOnMedia info = media.readSegmentInfo(seg);
            assertThat(info.type()).isEqualTo(SegmentInfoOnMedia.TYPE_CACHE_DATA);
            assertThat(info.hasNext()).as("segment %d", seg).isTrue();
            assertThat(info.nextSeg()).isEqualTo(seg + 1);
        }
        assertThat(media.readSegmentInfo(SEGS_512_MIB - 1).hasNext()).isFalse();
    }

    @Test
    void formatClearsTheFirstKsetHeaderOfEverySegment() throws Exception {
        byte[] junk = new byte[(int) KsetOnMedia.HEADER_SIZE];
        java.util.Arrays.fill(junk, (byte) 0x6B);
        for (int seg = 0; seg < SEGS_512_MIB; seg++) {
            region.write(CacheDeviceLayout.segmentOffset(seg) + CacheDeviceLayout.SEGMENT_DATA_OFFSET,
                    MemorySegment.ofArray(junk), 0, junk.length);
        }

        CacheDevice device = open();

        for (int seg = 0; seg < SEGS_512_MIB; seg++) {
            assertThat(region.durableBytes(device.dataOffset(seg), junk.length)).as("segment %d", seg)
                    .containsOnly(0);
        }
    }

    @Test
    void reopenValidatesWithoutWriting() throws Exception {
        open();
        long stores = region.storeCount();

        CacheDevice device = open();

        assertThat(device.formatted()).isFalse();
        assertThat(device.cacheInfo().nSegs()).isEqualTo(SEGS_512_MIB);
        assertThat(region.storeCount()).isEqualTo(stores);
    }

    @Test
    void updatesArePersistedAndReloaded() throws Exception {
        CacheDevice device = open();

        device.writeCacheInfo(device.cacheInfo().withGcPercent(50));
        device.writeKeyTail(new CachePos(3, 4096));
        device.writeDirtyTail(new CachePos(5, 1024));
        device.writeSegmentGen(7, 9);
        region.powerCut(1);

        CacheDevice reopened = open();
        assertThat(reopened.cacheInfo().gcPercent()).isEqualTo(50);
        assertThat(reopened.keyTail()).isEqualTo(new CachePos(3, 4096));
        assertThat(reopened.dirtyTail()).isEqualTo(new CachePos(5, 1024));
        assertThat(reopened.segmentGen(7)).isEqualTo(9);
        assertThat(reopened.segmentGen(6)).isZero();
        assertThat(device.segmentGen(7)).isEqualTo(9);
    }

    @Test
    void manyUpdatesWrapTheSequenceAndTheLastOneWins() throws Exception {
        CacheDevice device = open();

        for (int i = 1; i <= 600; i++) {
            device.writeKeyTail(new CachePos(i % SEGS_512_MIB, 8 * i));
            device.writeSegmentGen(2, i);
        }

        CacheDevice reopened = open();
        assertThat(reopened.keyTail()).isEqualTo(new CachePos(600 % SEGS_512_MIB, 4800));
        assertThat(reopened.segmentGen(2)).isEqualTo(600);
    }

    @Test
    void newCacheTakesItsSettingsFromTheOptions() throws Exception {
        CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(true, 0, 40));

        assertThat(device.cacheInfo().dataCrc()).isTrue();
        assertThat(device.cacheInfo().gcPercent()).isEqualTo(40);
        CacheDevice reopened = CacheDevice.open(region, new CacheDevice.Options(true, 0, 80));
        assertThat(reopened.cacheInfo().gcPercent()).as("an existing cache keeps its gc_percent").isEqualTo(40);
    }

    @Test
    void reopeningWithAnotherDataCrcIsRefusedWithoutWriting() throws Exception {
        CacheDevice.open(region, new CacheDevice.Options(true, 0, 70));
        long stores = region.storeCount();

        assertThatThrownBy(() -> CacheDevice.open(region, new CacheDevice.Options(false, 0, 70)))
                .isInstanceOfSatisfying(DataCrcMismatchException.class, e -> {
                    assertThat(e.requested()).isFalse();
                    assertThat(e.existing()).isTrue();
                })
                .hasMessageContaining("data_crc");
        assertThat(region.storeCount()).isEqualTo(stores);
    }

    @Test
    void deviceUnder512MibIsRefusedWithoutWriting() {
        try (CrashSimPmemRegion small = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE - 64)) {
            assertThatThrownBy(() -> CacheDevice.open(small, CacheDevice.Options.defaults()))
                    .isInstanceOfSatisfying(CacheDeviceTooSmallException.class,
                            e -> assertThat(e.size()).isEqualTo(CacheDeviceLayout.MIN_SIZE - 64))
                    .hasMessageContaining("too small");
            assertThat(small.storeCount()).isZero();
        }
    }

    @Test
    void largerDeviceGetsMoreSegments() throws Exception {
        try (CrashSimPmemRegion gib = new CrashSimPmemRegion(1024 * MIB)) {
            CacheDevice device = CacheDevice.open(gib, CacheDevice.Options.defaults());

            assertThat(device.physicalSegmentCount()).isEqualTo(63);
            assertThat(device.segmentCount()).isEqualTo(63);
        }
    }

    @Test
    void cacheWithoutInitDoneIsFormattedAgainWithTheRequestedOptions() throws Exception {
        CacheDevice device = open();
        CacheInfo info = device.cacheInfo();
        device.writeCacheInfo(new CacheInfo(info.segId(), info.nSegs(), info.dataCrc(), false, 0, 70, info.flags()));
        device.writeKeyTail(new CachePos(4, 64));

        CacheDevice reformatted = CacheDevice.open(region, new CacheDevice.Options(true, 0, 70));

        assertThat(reformatted.formatted()).isTrue();
        assertThat(reformatted.cacheInfo().dataCrc()).isTrue();
        assertThat(reformatted.cacheInfo().initDone()).isTrue();
        assertThat(reformatted.keyTail()).isEqualTo(new CachePos(0, 0));
        assertThat(CacheDevice.open(region, new CacheDevice.Options(true, 0, 70)).formatted()).isFalse();
    }

    @Test
    void validSuperblockWithoutCacheInfoFormatsTheSegments() throws Exception {
        open();
        region.zero(CacheDeviceLayout.CACHE_INFO_OFFSET, 2 * CacheInfoOnMedia.SLOT_STRIDE);
        region.persist(CacheDeviceLayout.CACHE_INFO_OFFSET, 2 * CacheInfoOnMedia.SLOT_STRIDE);

        CacheDevice device = open();

        assertThat(device.formatted()).isTrue();
        assertThat(open().formatted()).isFalse();
    }

    @Test
    void reformatNeverLetsAStaleTailReplicaWin() throws Exception {
        CacheDevice device = open();
        for (int i = 1; i <= 40; i++) {
            device.writeKeyTail(new CachePos(9, 8 * i));
            device.writeDirtyTail(new CachePos(9, 8 * i));
        }
        region.zero(CacheDeviceLayout.CACHE_INFO_OFFSET, 2 * CacheInfoOnMedia.SLOT_STRIDE);
        region.persist(CacheDeviceLayout.CACHE_INFO_OFFSET, 2 * CacheInfoOnMedia.SLOT_STRIDE);

        open();

        CacheDevice reopened = open();
        assertThat(reopened.keyTail()).isEqualTo(new CachePos(0, 0));
        assertThat(reopened.dirtyTail()).isEqualTo(new CachePos(0, 0));
    }

    @Test
    void chainInAnyPhysicalOrderMapsLogicalSegments() throws Exception {
        open();
        OnMediaEditor media = new OnMediaEditor(region);
        int linked = SegmentInfoOnMedia.FLAG_HAS_NEXT
                | SegmentInfoOnMedia.TYPE_CACHE_DATA << SegmentInfoOnMedia.TYPE_SHIFT;
        // Chain 0 -> 2 -> 1 -> 3 -> 4 ... as a kernel allocator could have linked it.
        media.segmentInfo(0, linked, 2);
        media.segmentInfo(2, linked, 1);
        media.segmentInfo(1, linked, 3);

        CacheDevice device = open();

        assertThat(device.physicalSegmentId(1)).isEqualTo(2);
        assertThat(device.physicalSegmentId(2)).isEqualTo(1);
        assertThat(device.dataOffset(1))
                .isEqualTo(CacheDeviceLayout.segmentOffset(2) + CacheDeviceLayout.SEGMENT_DATA_OFFSET);
    }

    @Test
    void optionsOutsideTheirRangesAreRefused() {
        assertThatThrownBy(() -> new CacheDevice.Options(false, 0, 91)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new CacheDevice.Options(false, -1, 70)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new CacheDevice.Options(false, 16, 70)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void cacheInfoWritesMayNotChangeTheLayout() throws Exception {
        CacheDevice device = open();
        CacheInfo info = device.cacheInfo();

        assertThatThrownBy(() -> device.writeCacheInfo(
                new CacheInfo(info.segId(), info.nSegs() - 1, false, true, 0, 70, 0)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> device.writeCacheInfo(info.withGcPercent(91)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void tailsOutsideTheCacheAreRefused() throws Exception {
        CacheDevice device = open();

        assertThatThrownBy(() -> device.writeKeyTail(new CachePos(SEGS_512_MIB, 0)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> device.writeDirtyTail(new CachePos(0, CacheDeviceLayout.MAX_KSET_OFFSET + 8)))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> device.writeDirtyTail(new CachePos(0, 12)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void cacheInfoPreservesUnknownFlagBits() {
        CacheInfo info = CacheInfo.fromFlags(0, 31, 0x8000_0000 | CacheInfoOnMedia.FLAG_INIT_DONE | 70 << 6);

        CacheInfo changed = info.withGcPercent(10);

        assertThat(changed.flags()).isEqualTo(0x8000_0000 | CacheInfoOnMedia.FLAG_INIT_DONE | 10 << 6);
        assertThat(changed.gcPercent()).isEqualTo(10);
    }

    @Test
    void cachePosPrintsAsSegColonOff() {
        assertThat(new CachePos(3, 4096)).hasToString("3:4096");
    }
}
