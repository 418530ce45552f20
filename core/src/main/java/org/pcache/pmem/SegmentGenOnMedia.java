package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_LONG;

import java.lang.foreign.MemorySegment;

/**
 * A segment's generation, in two adjacent replicas at 8 KiB into each segment (the segment control area): dm-pcache's
 * {@code pcache_cache_seg_gen}. A key whose seg_gen is below its segment's gen is stale.
 *
 * <p>Owned by one thread; wraps a staging buffer, never the mapping.
 */
public final class SegmentGenOnMedia {
    public static final long GEN_OFFSET = MetaHeader.SIZE;
    /**
     * Size of the record.
     * <pre>
     *  0              8                      16
     *  +--------------+----------------------+
     *  | meta header  |         gen          |
     *  +--------------+----------------------+
     * </pre>
     * gen: u64, bumped each time the segment is reclaimed.
     */
    public static final long SIZE = GEN_OFFSET + Long.BYTES;
    /** The two replicas are adjacent (the control area holds an array of two). */
    public static final long SLOT_STRIDE = SIZE;

    private MemorySegment buf;

    /** Makes this flyweight read and write {@code staging}, which must hold at least {@link #SIZE} bytes. */
    public SegmentGenOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, SIZE, "segment_gen");
        return this;
    }

    public long gen() {
        return buf.get(LE_LONG, GEN_OFFSET);
    }

    public SegmentGenOnMedia gen(long gen) {
        buf.set(LE_LONG, GEN_OFFSET, gen);
        return this;
    }
}
