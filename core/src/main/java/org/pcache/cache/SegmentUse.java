package org.pcache.cache;

/** What a cache segment holds at one moment ({@link Pcache#segmentUses()}). */
public enum SegmentUse {
    /** Not in use: the next-fit allocator may hand it out. */
    FREE,
    /** A segment of the kset log chain, between key_tail and key_head. */
    LOG,
    /**
     * Data of key records the log still holds, all of it on the backing device already (written back, or a miss fill),
     * or the segment a data head is filling; GC frees it once it reclaims the ksets that name it.
     */
    DATA,
    /** Data at least one key not yet written back points into ({@link Pcache#segmentUses()} only). */
    DIRTY
}
