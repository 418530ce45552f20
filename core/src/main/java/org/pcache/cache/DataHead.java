package org.pcache.cache;

import org.pcache.pmem.CacheDeviceLayout;

/**
 * An allocation cursor in a data segment (dm-pcache's per-CPU data head): hands out consecutive space for key data and
 * never crosses the end of its segment.
 *
 * <p>Invariants: while {@link #seg} is set the head holds one reference on it; every successful allocation takes one
 * more reference, owned by the key record the space is for.
 *
 * <p>Threading: a head is shared by the threads its stripe maps to; its state is guarded by its monitor.
 */
final class DataHead {

    private final SegmentMap segments;
    /** Guarded by this. */
    private CacheSegment seg;
    /** Guarded by this. */
    private int off;

    DataHead(SegmentMap segments) {
        this.segments = segments;
    }

    /**
     * Places up to {@code len} bytes for {@code key} (a multiple of 512); returns how many, which is less when the
     * segment ends first, or 0 when the head has no segment and either {@code takeSegment} is false or no segment is
     * free.
     */
    int allocate(CacheKey key, int len, boolean takeSegment) {
        CacheSegment finished = null;
        int placed;
        synchronized (this) {
            if (seg == null) {
                if (!takeSegment) {
                    return 0;
                }
                seg = segments.allocateData();
                if (seg == null) {
                    return 0;
                }
                seg.retain();
                off = 0;
            }
            placed = Math.min(len, CacheDeviceLayout.SEGMENT_DATA_SIZE - off);
            key.place(seg, off, seg.gen());
            seg.retain();
            off += placed;
            if (off == CacheDeviceLayout.SEGMENT_DATA_SIZE) {
                finished = seg;
                seg = null;
            }
        }
        if (finished != null) {
            segments.release(finished); // the head's reference; the key's keeps the segment alive
        }
        return placed;
    }
}
