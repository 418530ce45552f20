package org.pcache.cache;

/** What a cache segment holds at one moment ({@link Pcache#segmentUses()}). */
public enum SegmentUse {
    /** Not in use: the next-fit allocator may hand it out. */
    FREE,
    /** A segment of the kset log chain, between key_tail and key_head. */
    LOG,
    /** Data of key records the log still holds, or the segment a data head is filling. */
    DATA
}
