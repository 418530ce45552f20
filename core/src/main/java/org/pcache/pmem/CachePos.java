package org.pcache.pmem;

/**
 * A position in the cache: a logical cache segment (its index on the segment chain) and a byte offset inside that
 * segment's data area. Printed as {@code seg:off}, like dm-pcache's status line.
 *
 * @param seg logical cache segment, 0 .. n_segs - 1
 * @param off byte offset in the segment's data area
 */
public record CachePos(int seg, int off) {

    public CachePos {
        if (seg < 0 || off < 0) {
            throw new IllegalArgumentException("negative cache position " + seg + ":" + off);
        }
    }

    @Override
    public String toString() {
        return seg + ":" + off;
    }
}
