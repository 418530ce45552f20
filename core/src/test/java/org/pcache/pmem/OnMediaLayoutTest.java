package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * Pins every offset and size to dm-pcache's x86-64 structs (pcache_internal.h, cache_dev.h, segment.h, cache.h), so
 * byte compatibility with the kernel is tested rather than hoped for.
 */
class OnMediaLayoutTest {

    @Test
    void metaHeaderMatchesPcacheMetaHeader() {
        assertThat(MetaHeader.CRC_OFFSET).isZero();
        assertThat(MetaHeader.SEQ_OFFSET).isEqualTo(4);
        assertThat(MetaHeader.VERSION_OFFSET).isEqualTo(5);
        assertThat(MetaHeader.RESERVED_OFFSET).isEqualTo(6);
        assertThat(MetaHeader.SIZE).isEqualTo(8);
    }

    @Test
    void superblockMatchesPcacheSb() {
        assertThat(SuperblockOnMedia.CRC_OFFSET).isZero();
        assertThat(SuperblockOnMedia.FLAGS_OFFSET).isEqualTo(4);
        assertThat(SuperblockOnMedia.MAGIC_OFFSET).isEqualTo(8);
        assertThat(SuperblockOnMedia.SEG_NUM_OFFSET).isEqualTo(16);
        assertThat(SuperblockOnMedia.SIZE).isEqualTo(24);
        assertThat(SuperblockOnMedia.MAGIC).isEqualTo(0x65B05EFA96C596EFL);
        assertThat(SuperblockOnMedia.FLAG_BIGENDIAN).isEqualTo(1);
    }

    @Test
    void cacheInfoMatchesPcacheCacheInfo() {
        assertThat(CacheInfoOnMedia.SEG_ID_OFFSET).isEqualTo(8);
        assertThat(CacheInfoOnMedia.N_SEGS_OFFSET).isEqualTo(12);
        assertThat(CacheInfoOnMedia.FLAGS_OFFSET).isEqualTo(16);
        assertThat(CacheInfoOnMedia.RESERVED_OFFSET).isEqualTo(20);
        assertThat(CacheInfoOnMedia.SIZE).isEqualTo(24);
        assertThat(CacheInfoOnMedia.SLOT_STRIDE).isEqualTo(4096);
        assertThat(CacheInfoOnMedia.FLAG_DATA_CRC).isEqualTo(1 << 0);
        assertThat(CacheInfoOnMedia.FLAG_INIT_DONE).isEqualTo(1 << 1);
        assertThat(CacheInfoOnMedia.CACHE_MODE_MASK).isEqualTo(0b1111 << 2);
        assertThat(CacheInfoOnMedia.GC_PERCENT_MASK).isEqualTo(0b111_1111 << 6);
    }

    @Test
    void cachePosMatchesPcacheCachePosOnmedia() {
        assertThat(CachePosOnMedia.CACHE_SEG_ID_OFFSET).isEqualTo(8);
        assertThat(CachePosOnMedia.SEG_OFF_OFFSET).isEqualTo(12);
        assertThat(CachePosOnMedia.SIZE).isEqualTo(16);
        assertThat(CachePosOnMedia.SLOT_STRIDE).isEqualTo(16);
    }

    @Test
    void segmentInfoMatchesPcacheSegmentInfo() {
        assertThat(SegmentInfoOnMedia.FLAGS_OFFSET).isEqualTo(8);
        assertThat(SegmentInfoOnMedia.NEXT_SEG_OFFSET).isEqualTo(12);
        assertThat(SegmentInfoOnMedia.SIZE).isEqualTo(16);
        assertThat(SegmentInfoOnMedia.SLOT_STRIDE).isEqualTo(4096);
        assertThat(SegmentInfoOnMedia.FLAG_HAS_NEXT).isEqualTo(1);
        assertThat(SegmentInfoOnMedia.TYPE_MASK).isEqualTo(0b1111 << 1);
        assertThat(SegmentInfoOnMedia.TYPE_CACHE_DATA).isEqualTo(1);
    }

    @Test
    void segmentGenMatchesPcacheCacheSegGen() {
        assertThat(SegmentGenOnMedia.GEN_OFFSET).isEqualTo(8);
        assertThat(SegmentGenOnMedia.SIZE).isEqualTo(16);
        assertThat(SegmentGenOnMedia.SLOT_STRIDE).isEqualTo(16);
    }

    @Test
    void ksetHeaderMatchesPcacheCacheKsetOnmedia() {
        assertThat(KsetOnMedia.CRC_OFFSET).isZero();
        assertThat(KsetOnMedia.KEY_NUM_OFFSET).isEqualTo(4);
        assertThat(KsetOnMedia.NEXT_CACHE_SEG_ID_OFFSET).isEqualTo(4);
        assertThat(KsetOnMedia.MAGIC_OFFSET).isEqualTo(8);
        assertThat(KsetOnMedia.FLAGS_OFFSET).isEqualTo(16);
        assertThat(KsetOnMedia.HEADER_SIZE).isEqualTo(24);
        assertThat(KsetOnMedia.KEYS_MAX).isEqualTo(128);
        assertThat(KsetOnMedia.MAX_SIZE).isEqualTo(24 + 128 * 40);
        assertThat(KsetOnMedia.size(3)).isEqualTo(24 + 3 * 40);
        assertThat(KsetOnMedia.MAGIC).isEqualTo(0x676894a64e164f1aL);
        assertThat(KsetOnMedia.FLAG_LAST).isEqualTo(1);
    }

    @Test
    void keyMatchesPcacheCacheKeyOnmedia() {
        assertThat(KeyOnMedia.OFF_OFFSET).isZero();
        assertThat(KeyOnMedia.LEN_OFFSET).isEqualTo(8);
        assertThat(KeyOnMedia.FLAGS_OFFSET).isEqualTo(12);
        assertThat(KeyOnMedia.CACHE_SEG_ID_OFFSET).isEqualTo(16);
        assertThat(KeyOnMedia.CACHE_SEG_OFF_OFFSET).isEqualTo(20);
        assertThat(KeyOnMedia.SEG_GEN_OFFSET).isEqualTo(24);
        assertThat(KeyOnMedia.DATA_CRC_OFFSET).isEqualTo(32);
        assertThat(KeyOnMedia.RESERVED_OFFSET).isEqualTo(36);
        assertThat(KeyOnMedia.SIZE).isEqualTo(40);
        assertThat(KeyOnMedia.FLAG_EMPTY).isEqualTo(1);
        assertThat(KeyOnMedia.FLAG_CLEAN).isEqualTo(2);
    }

    @Test
    void deviceMapMatchesCacheDevH() {
        assertThat(CacheDeviceLayout.SUPERBLOCK_OFFSET).isEqualTo(4 * 1024);
        assertThat(CacheDeviceLayout.CACHE_INFO_OFFSET).isEqualTo(8 * 1024);
        assertThat(CacheDeviceLayout.CACHE_CTRL_OFFSET).isEqualTo(16 * 1024);
        assertThat(CacheDeviceLayout.KEY_TAIL_OFFSET).isEqualTo(16 * 1024);
        assertThat(CacheDeviceLayout.DIRTY_TAIL_OFFSET).isEqualTo(16 * 1024 + 32);
        assertThat(CacheDeviceLayout.SEGMENTS_OFFSET).isEqualTo(20 * 1024);
        assertThat(CacheDeviceLayout.SEGMENT_SIZE).isEqualTo(16L * 1024 * 1024);
        assertThat(CacheDeviceLayout.MIN_SIZE).isEqualTo(512L * 1024 * 1024);
        assertThat(CacheDeviceLayout.SEGMENTS_MAX).isEqualTo(1024 * 1024);
    }

    @Test
    void segmentMapMatchesCacheH() {
        assertThat(CacheDeviceLayout.SEGMENT_INFO_OFFSET).isZero();
        assertThat(CacheDeviceLayout.SEGMENT_CTRL_OFFSET).isEqualTo(8 * 1024);
        assertThat(CacheDeviceLayout.SEGMENT_DATA_OFFSET).isEqualTo(12 * 1024);
        assertThat(CacheDeviceLayout.SEGMENT_DATA_SIZE).isEqualTo(16 * 1024 * 1024 - 12 * 1024);
        assertThat(CacheDeviceLayout.MAX_KSET_OFFSET).isEqualTo(16 * 1024 * 1024 - 12 * 1024 - 24);
    }

    @Test
    void minimumDeviceHoldsThirtyOneSegments() {
        assertThat((CacheDeviceLayout.MIN_SIZE - CacheDeviceLayout.SEGMENTS_OFFSET) / CacheDeviceLayout.SEGMENT_SIZE)
                .isEqualTo(31);
    }
}
