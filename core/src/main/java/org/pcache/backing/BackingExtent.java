package org.pcache.backing;

/**
 * One run of a store's allocation map, as {@link IoEngine#allocation} reports it: {@link Kind#DATA} (allocated, or not
 * known to be otherwise) or {@link Kind#HOLE} (not allocated: reads as zeroes and takes no space).
 *
 * @param length bytes in the run, more than 0
 * @param kind   data or hole
 */
public record BackingExtent(long length, Kind kind) {

    public BackingExtent {
        if (length <= 0) {
            throw new IllegalArgumentException("extent length " + length + " (expected > 0)");
        }
    }

    /** What a run holds. */
    public enum Kind {
        /** Allocated, or not known to be a hole: what any store may always report. */
        DATA,
        /** Not allocated; reads as zeroes. */
        HOLE
    }
}
