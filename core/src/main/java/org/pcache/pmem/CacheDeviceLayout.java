package org.pcache.pmem;

/**
 * The cache device's geometry (dm-pcache's cache_dev.h): where the superblock, the two cache_info replicas, the
 * tails and every segment sit, and how a segment is laid out. Pure arithmetic on constants; nothing here reads or
 * writes the device.
 *
 * <pre>
 *  device:  0      4K          8K           12K          16K          20K          20K + 16M     ...
 *           +------+-----------+------------+------------+------------+------------+------------+----
 *           |unused| superblock|cache_info 0|cache_info 1| cache_ctrl | segment 0  | segment 1  | ...
 *           +------+-----------+------------+------------+------------+------------+------------+----
 *  segment: 0             4K             8K              12K                                     16M
 *           +-------------+--------------+---------------+----------------------------------------+
 *           |seg_info 0   |seg_info 1    |gen 0, gen 1   |            data area                   |
 *           +-------------+--------------+---------------+----------------------------------------+
 * </pre>
 * cache_ctrl holds key_tail[0] @0, key_tail[1] @16, dirty_tail[0] @32, dirty_tail[1] @48. docs/format.md has every
 * record.
 */
public final class CacheDeviceLayout {
    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long AREA_SIZE = 4 * KIB;

    /** Size of a segment (PCACHE_SEG_SIZE). */
    public static final long SEGMENT_SIZE = 16 * MIB;
    /** Smallest cache device dm-pcache accepts (PCACHE_CACHE_DEV_SIZE_MIN). */
    public static final long MIN_SIZE = 512 * MIB;
    /** Most segments a device may have (PCACHE_CACHE_SEGS_MAX, 16 TiB). */
    public static final int SEGMENTS_MAX = 1 << 20;

    /** The superblock, after 4 KiB left unused. */
    public static final long SUPERBLOCK_OFFSET = AREA_SIZE;
    /** cache_info replica 0; replica 1 follows 4 KiB later. */
    public static final long CACHE_INFO_OFFSET = SUPERBLOCK_OFFSET + AREA_SIZE;
    /** cache_ctrl: the two tails, two adjacent replicas each. */
    public static final long CACHE_CTRL_OFFSET = CACHE_INFO_OFFSET + DualReplica.SLOTS * CacheInfoOnMedia.SLOT_STRIDE;
    /** key_tail replica 0 (GC's position). */
    public static final long KEY_TAIL_OFFSET = CACHE_CTRL_OFFSET;
    /** dirty_tail replica 0 (writeback's position). */
    public static final long DIRTY_TAIL_OFFSET = KEY_TAIL_OFFSET + DualReplica.SLOTS * CachePosOnMedia.SLOT_STRIDE;
    /** Physical segment 0; segment i starts at {@code SEGMENTS_OFFSET + i * SEGMENT_SIZE}. */
    public static final long SEGMENTS_OFFSET = CACHE_CTRL_OFFSET + AREA_SIZE;

    /** Offset of the segment_info replicas inside a segment. */
    public static final long SEGMENT_INFO_OFFSET = 0;
    /** Offset of the segment control area (gen replicas) inside a segment. */
    public static final long SEGMENT_CTRL_OFFSET =
            SEGMENT_INFO_OFFSET + DualReplica.SLOTS * SegmentInfoOnMedia.SLOT_STRIDE;
    /** Offset of the data area inside a segment. */
    public static final long SEGMENT_DATA_OFFSET = SEGMENT_CTRL_OFFSET + AREA_SIZE;
    /** Size of a segment's data area: 16 MiB - 12 KiB. */
    public static final int SEGMENT_DATA_SIZE = Math.toIntExact(SEGMENT_SIZE - SEGMENT_DATA_OFFSET);

    /** The last offset of a data area where a kset can start: a LAST kset's header always fits after it. */
    public static final int MAX_KSET_OFFSET = SEGMENT_DATA_SIZE - Math.toIntExact(KsetOnMedia.HEADER_SIZE);

    private CacheDeviceLayout() {
    }

    /** Region offset of physical segment {@code physicalId}. */
    public static long segmentOffset(int physicalId) {
        return SEGMENTS_OFFSET + physicalId * SEGMENT_SIZE;
    }

    /** Physical segments that fit a device of {@code deviceSize} bytes (the seg_num a format writes). */
    public static int maxSegments(long deviceSize) {
        return (int) Math.min((deviceSize - SEGMENTS_OFFSET) / SEGMENT_SIZE, SEGMENTS_MAX);
    }
}
