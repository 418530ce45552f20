package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;

import java.lang.foreign.MemorySegment;

/**
 * A segment's description, in two replicas 4 KiB apart at the start of each 16 MiB segment: dm-pcache's
 * {@code pcache_segment_info}. It links the segment into the cache's chain.
 *
 * <p>Owned by one thread; wraps a staging buffer, never the mapping.
 */
public final class SegmentInfoOnMedia {
    public static final long FLAGS_OFFSET = MetaHeader.SIZE;
    public static final long NEXT_SEG_OFFSET = FLAGS_OFFSET + Integer.BYTES;
    /**
     * Size of the record.
     * <pre>
     *  0              8         12          16
     *  +--------------+---------+-----------+
     *  | meta header  |  flags  | next_seg  |
     *  +--------------+---------+-----------+
     * </pre>
     * flags: u32, bit 0 HAS_NEXT, bits 1-4 segment type; next_seg: u32, physical id of the next segment on the chain
     * (meaningful only with HAS_NEXT).
     */
    public static final long SIZE = NEXT_SEG_OFFSET + Integer.BYTES;
    /** Distance between the two replicas (PCACHE_SEG_INFO_SIZE). */
    public static final long SLOT_STRIDE = 4096;

    public static final int FLAG_HAS_NEXT = 1;
    public static final int TYPE_SHIFT = 1;
    public static final int TYPE_MASK = 0xF << TYPE_SHIFT;
    /** The only segment type dm-pcache defines. */
    public static final int TYPE_CACHE_DATA = 1;

    private MemorySegment buf;

    /** Makes this flyweight read and write {@code staging}, which must hold at least {@link #SIZE} bytes. */
    public SegmentInfoOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, SIZE, "segment_info");
        return this;
    }

    public int flags() {
        return buf.get(LE_INT, FLAGS_OFFSET);
    }

    public SegmentInfoOnMedia flags(int flags) {
        buf.set(LE_INT, FLAGS_OFFSET, flags);
        return this;
    }

    public boolean hasNext() {
        return (flags() & FLAG_HAS_NEXT) != 0;
    }

    public int type() {
        return (flags() & TYPE_MASK) >>> TYPE_SHIFT;
    }

    public SegmentInfoOnMedia type(int type) {
        if (type < 0 || type > TYPE_MASK >>> TYPE_SHIFT) {
            throw new IllegalArgumentException("segment type " + type + " does not fit 4 bits");
        }
        return flags((flags() & ~TYPE_MASK) | type << TYPE_SHIFT);
    }

    public int nextSeg() {
        return buf.get(LE_INT, NEXT_SEG_OFFSET);
    }

    public SegmentInfoOnMedia nextSeg(int segId) {
        buf.set(LE_INT, NEXT_SEG_OFFSET, segId);
        return this;
    }

    /** Sets HAS_NEXT and points the chain at physical segment {@code segId}. */
    public SegmentInfoOnMedia linkNext(int segId) {
        return flags(flags() | FLAG_HAS_NEXT).nextSeg(segId);
    }
}
