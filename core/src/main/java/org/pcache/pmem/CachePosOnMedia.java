package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;

import java.lang.foreign.MemorySegment;

/**
 * A persisted tail position (key_tail or dirty_tail), kept in two adjacent replicas in cache_ctrl: dm-pcache's
 * {@code pcache_cache_pos_onmedia}.
 *
 * <p>Owned by one thread; wraps a staging buffer, never the mapping.
 */
public final class CachePosOnMedia {
    public static final long CACHE_SEG_ID_OFFSET = MetaHeader.SIZE;
    public static final long SEG_OFF_OFFSET = CACHE_SEG_ID_OFFSET + Integer.BYTES;
    /**
     * Size of the record.
     * <pre>
     *  0              8               12          16
     *  +--------------+---------------+-----------+
     *  | meta header  | cache_seg_id  |  seg_off  |
     *  +--------------+---------------+-----------+
     * </pre>
     * cache_seg_id: u32, logical segment; seg_off: u32, offset in that segment's data area.
     */
    public static final long SIZE = SEG_OFF_OFFSET + Integer.BYTES;
    /** The two replicas are adjacent (cache_ctrl is an array of four of these). */
    public static final long SLOT_STRIDE = SIZE;

    private MemorySegment buf;

    /** Makes this flyweight read and write {@code staging}, which must hold at least {@link #SIZE} bytes. */
    public CachePosOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, SIZE, "cache_pos");
        return this;
    }

    public int cacheSegId() {
        return buf.get(LE_INT, CACHE_SEG_ID_OFFSET);
    }

    public CachePosOnMedia cacheSegId(int cacheSegId) {
        buf.set(LE_INT, CACHE_SEG_ID_OFFSET, cacheSegId);
        return this;
    }

    public int segOff() {
        return buf.get(LE_INT, SEG_OFF_OFFSET);
    }

    public CachePosOnMedia segOff(int segOff) {
        buf.set(LE_INT, SEG_OFF_OFFSET, segOff);
        return this;
    }

    /**
     * Checks that the position lies in the cache ({@code cache_seg_id < nSegs}) and leaves room for a kset header in
     * the data area at an 8-byte boundary, where every kset starts, and decodes it. {@code record} ("key_tail",
     * "dirty_tail") and {@code offset} name the record in the error.
     */
    public CachePos decodeValid(String record, int nSegs, long offset) throws CorruptMediaException {
        if (Integer.compareUnsigned(cacheSegId(), nSegs) >= 0) {
            throw new CorruptMediaException(record, CorruptMediaException.NO_SEGMENT, offset, "cache_seg_id",
                    "< n_segs " + nSegs, Integer.toUnsignedString(cacheSegId()));
        }
        if (Integer.compareUnsigned(segOff(), CacheDeviceLayout.MAX_KSET_OFFSET) > 0 || segOff() % Long.BYTES != 0) {
            throw new CorruptMediaException(record, CorruptMediaException.NO_SEGMENT, offset, "seg_off",
                    "a multiple of 8 in 0.." + CacheDeviceLayout.MAX_KSET_OFFSET + " (room for a kset header)",
                    Integer.toUnsignedString(segOff()));
        }
        return new CachePos(cacheSegId(), segOff());
    }

    /** Encodes {@code pos} with a zeroed header (the seq and CRC are DualReplica's). */
    public CachePosOnMedia encode(CachePos pos) {
        buf.asSlice(0, SIZE).fill((byte) 0);
        return cacheSegId(pos.seg()).segOff(pos.off());
    }
}
