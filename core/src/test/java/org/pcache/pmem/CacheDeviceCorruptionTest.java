package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.SplittableRandom;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Every class of metadata corruption is refused with a typed error naming the field, and nothing is written. */
@Timeout(30)
class CacheDeviceCorruptionTest {
    private static final int SEGS = 31;
    private static final int LINKED = SegmentInfoOnMedia.FLAG_HAS_NEXT
            | SegmentInfoOnMedia.TYPE_CACHE_DATA << SegmentInfoOnMedia.TYPE_SHIFT;
    private static final int INIT_DONE_GC_70 =
            CacheInfoOnMedia.FLAG_INIT_DONE | 70 << CacheInfoOnMedia.GC_PERCENT_SHIFT;

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE);
    private final OnMediaEditor media = new OnMediaEditor(region);

    @BeforeEach
    void format() throws Exception {
        CacheDevice.open(region, CacheDevice.Options.defaults());
    }

    @AfterEach
    void closeRegion() {
        region.close();
    }

    /** Opens the damaged image and checks the error and that the image is byte-for-byte untouched. */
    private CorruptMediaException refused(String record, String field) {
        byte[] before = OnMediaEditor.metadata(region, SEGS);
        long stores = region.storeCount();
        CorruptMediaException[] caught = new CorruptMediaException[1];

        assertThatThrownBy(() -> CacheDevice.open(region, CacheDevice.Options.defaults()))
                .isInstanceOfSatisfying(CorruptMediaException.class, e -> {
                    assertThat(e.record()).isEqualTo(record);
                    assertThat(e.field()).isEqualTo(field);
                    assertThat(e.getMessage()).contains(record).contains(field).contains(e.found());
                    caught[0] = e;
                });
        assertThat(region.storeCount()).as("stores").isEqualTo(stores);
        assertThat(OnMediaEditor.metadata(region, SEGS)).as("metadata bytes").isEqualTo(before);
        return caught[0];
    }

    @Test
    void wrongSuperblockMagic() {
        media.superblock(0, 0x1234_5678L, SEGS);

        CorruptMediaException e = refused("superblock", "magic");

        assertThat(e.found()).isEqualTo("0x12345678");
        assertThat(e.offset()).isEqualTo(CacheDeviceLayout.SUPERBLOCK_OFFSET);
        assertThat(e.segment()).isEqualTo(CorruptMediaException.NO_SEGMENT);
    }

    @Test
    void superblockCrcMismatch() {
        media.flipByte(CacheDeviceLayout.SUPERBLOCK_OFFSET + SuperblockOnMedia.SEG_NUM_OFFSET);

        refused("superblock", "crc");
    }

    @Test
    void superblockFromABigEndianMachine() {
        media.superblock(SuperblockOnMedia.FLAG_BIGENDIAN, SuperblockOnMedia.MAGIC, SEGS);

        refused("superblock", "flags");
    }

    @Test
    void segNumBeyondWhatTheDeviceHolds() {
        media.superblock(0, SuperblockOnMedia.MAGIC, SEGS + 1);

        CorruptMediaException e = refused("superblock", "seg_num");

        assertThat(e.found()).isEqualTo("32");
        assertThat(e.expected()).contains("1..31");
    }

    @Test
    void segNumWithTheTopBitSet() {
        media.superblock(0, SuperblockOnMedia.MAGIC, 0x8000_0001);

        assertThat(refused("superblock", "seg_num").found()).isEqualTo("2147483649");
    }

    @Test
    void zeroSegNum() {
        media.superblock(0, SuperblockOnMedia.MAGIC, 0);

        refused("superblock", "seg_num");
    }

    @Test
    void zeroNSegs() {
        media.cacheInfo(0, 0, INIT_DONE_GC_70);

        refused("cache_info", "n_segs");
    }

    @Test
    void nSegsAboveSegNum() {
        media.superblock(0, SuperblockOnMedia.MAGIC, SEGS - 1);

        assertThat(refused("cache_info", "n_segs").found()).isEqualTo("31");
    }

    @Test
    void firstSegmentIdOutOfRange() {
        media.cacheInfo(SEGS, SEGS, INIT_DONE_GC_70);

        refused("cache_info", "seg_id");
    }

    @Test
    void gcPercentAboveNinety() {
        media.cacheInfo(0, SEGS, CacheInfoOnMedia.FLAG_INIT_DONE | 100 << CacheInfoOnMedia.GC_PERCENT_SHIFT);

        refused("cache_info", "flags.gc_percent");
    }

    @Test
    void unknownPcacheExtensionBitIsRefused() {
        media.cacheInfo(0, SEGS, INIT_DONE_GC_70 | CacheInfoOnMedia.FLAG_DATALESS_KEYS | 1 << 17);

        assertThat(refused("cache_info", "flags").found()).isEqualTo("unknown extension bits 0x20000");
    }

    @Test
    void knownPcacheExtensionBitOpens() throws Exception {
        media.cacheInfo(0, SEGS, INIT_DONE_GC_70 | CacheInfoOnMedia.FLAG_DATALESS_KEYS);

        assertThat(CacheDevice.inspect(region).cacheInfo().datalessKeys()).isTrue();
    }

    @Test
    void nextSegmentIdOutOfRange() {
        media.segmentInfo(4, LINKED, 0xFFFF_FFFF);

        CorruptMediaException e = refused("segment_info", "next_seg");

        assertThat(e.segment()).isEqualTo(4);
        assertThat(e.found()).isEqualTo("4294967295");
    }

    @Test
    void brokenChainMissingHasNext() {
        media.segmentInfo(5, SegmentInfoOnMedia.TYPE_CACHE_DATA << SegmentInfoOnMedia.TYPE_SHIFT, 0);

        assertThat(refused("segment_info", "flags.HAS_NEXT").segment()).isEqualTo(5);
    }

    @Test
    void cyclicChain() {
        media.segmentInfo(5, LINKED, 2);

        CorruptMediaException e = refused("segment_info", "next_seg");

        assertThat(e.found()).contains("cycle");
        assertThat(e.segment()).isEqualTo(5);
    }

    @Test
    void chainLoopingOnItself() {
        media.segmentInfo(0, LINKED, 0);

        assertThat(refused("segment_info", "next_seg").found()).contains("cycle");
    }

    @Test
    void segmentInfoWithoutAValidReplica() {
        long base = CacheDeviceLayout.segmentOffset(6);
        media.flipByte(base + SegmentInfoOnMedia.FLAGS_OFFSET);
        media.flipByte(base + SegmentInfoOnMedia.SLOT_STRIDE + SegmentInfoOnMedia.FLAGS_OFFSET);

        assertThat(refused("segment_info", "crc").segment()).isEqualTo(6);
    }

    @Test
    void segmentOfAnUnknownType() {
        media.segmentInfo(3, SegmentInfoOnMedia.FLAG_HAS_NEXT | 2 << SegmentInfoOnMedia.TYPE_SHIFT, 4);

        refused("segment_info", "flags.type");
    }

    @Test
    void keyTailSegmentOutOfRange() {
        media.tail(CacheDeviceLayout.KEY_TAIL_OFFSET, SEGS, 0);

        refused("key_tail", "cache_seg_id");
    }

    @Test
    void keyTailOffsetPastTheDataArea() {
        media.tail(CacheDeviceLayout.KEY_TAIL_OFFSET, 0, CacheDeviceLayout.SEGMENT_DATA_SIZE);

        refused("key_tail", "seg_off");
    }

    @Test
    void keyTailOffsetWithoutRoomForAKsetHeader() {
        media.tail(CacheDeviceLayout.KEY_TAIL_OFFSET, 0, CacheDeviceLayout.MAX_KSET_OFFSET + 8);

        refused("key_tail", "seg_off");
    }

    @Test
    void dirtyTailOffsetNotOnAKsetBoundary() {
        media.tail(CacheDeviceLayout.DIRTY_TAIL_OFFSET, 1, 4100);

        refused("dirty_tail", "seg_off");
    }

    @Test
    void dirtyTailSegmentWithTheTopBitSet() {
        media.tail(CacheDeviceLayout.DIRTY_TAIL_OFFSET, 0x8000_0000, 0);

        assertThat(refused("dirty_tail", "cache_seg_id").found()).isEqualTo("2147483648");
    }

    @Test
    void tailWithoutAValidReplica() {
        media.flipByte(CacheDeviceLayout.DIRTY_TAIL_OFFSET + CachePosOnMedia.SEG_OFF_OFFSET);
        media.flipByte(
                CacheDeviceLayout.DIRTY_TAIL_OFFSET + CachePosOnMedia.SLOT_STRIDE + CachePosOnMedia.SEG_OFF_OFFSET);

        refused("dirty_tail", "crc");
    }

    @Test
    void oneDamagedCacheInfoReplicaNeverMakesTheCacheLookNew() throws Exception {
        media.flipByte(
                CacheDeviceLayout.CACHE_INFO_OFFSET + CacheInfoOnMedia.SLOT_STRIDE + CacheInfoOnMedia.FLAGS_OFFSET);

        CacheDevice device = CacheDevice.open(region, CacheDevice.Options.defaults());

        assertThat(device.formatted()).isFalse();
        assertThat(device.cacheInfo().initDone()).isTrue();
    }

    @Test
    void anySingleFlippedMetadataByteOpensOrFailsWithCorruptMedia() throws Exception {
        long seed = 0xC0FFEE;
        SplittableRandom random = new SplittableRandom(seed);
        long[][] areas = {
            {CacheDeviceLayout.SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE},
            {CacheDeviceLayout.CACHE_INFO_OFFSET, CacheInfoOnMedia.SIZE},
            {CacheDeviceLayout.CACHE_INFO_OFFSET + CacheInfoOnMedia.SLOT_STRIDE, CacheInfoOnMedia.SIZE},
            {CacheDeviceLayout.CACHE_CTRL_OFFSET, 4 * CachePosOnMedia.SIZE},
        };
        int refusedCount = 0;
        int openedCount = 0;
        for (int round = 0; round < 400; round++) {
            long offset;
            if (round % 2 == 0) {
                long[] area = areas[random.nextInt(areas.length)];
                offset = area[0] + random.nextLong(area[1]);
            } else {
                long[] segmentRecords = {
                    CacheDeviceLayout.SEGMENT_INFO_OFFSET,
                    CacheDeviceLayout.SEGMENT_INFO_OFFSET + SegmentInfoOnMedia.SLOT_STRIDE,
                    CacheDeviceLayout.SEGMENT_CTRL_OFFSET,
                    CacheDeviceLayout.SEGMENT_CTRL_OFFSET + SegmentGenOnMedia.SLOT_STRIDE,
                };
                offset = CacheDeviceLayout.segmentOffset(random.nextInt(SEGS))
                        + segmentRecords[random.nextInt(segmentRecords.length)] + random.nextLong(16);
            }
            media.flipByte(offset);
            long stores = region.storeCount();
            try {
                CacheDevice device = CacheDevice.open(region, CacheDevice.Options.defaults());
                assertThat(device.formatted()).as("seed %d round %d offset %d", seed, round, offset).isFalse();
                openedCount++;
            } catch (CorruptMediaException e) {
                assertThat(region.storeCount()).as("seed %d round %d offset %d", seed, round, offset)
                        .isEqualTo(stores);
                refusedCount++;
            }
            media.flipByte(offset);
        }
        assertThat(refusedCount).isPositive();
        assertThat(openedCount).isPositive();
    }
}
