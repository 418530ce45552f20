package org.pcache.cache;

/**
 * The data heads, striped by thread so concurrent writers rarely share one (dm-pcache keeps one per CPU).
 *
 * <p>Invariants: every head pins the segment it points into, so there are never more heads than
 * {@link #MAX_PINNED_FRACTION} of the cache's segments, whatever count was asked for; and a writer whose head finds no
 * free segment fills the segments the other heads hold instead. A head's segment is released only once it is full, so
 * without that fallback heads whose threads stopped writing could pin every segment that could ever be freed, and every
 * write would wait forever.
 */
final class DataHeads {

    /** At most one head per this many segments: heads pin at most a quarter of the cache. */
    static final int MAX_PINNED_FRACTION = 4;

    private final DataHead[] heads;

    /** {@code requested} heads (e.g. one per CPU), bounded by the segment count. */
    DataHeads(SegmentMap segments, int requested) {
        heads = new DataHead[count(requested, segments.count())];
        for (int i = 0; i < heads.length; i++) {
            heads[i] = new DataHead(segments);
        }
    }

    /** How many heads a cache of {@code segmentCount} segments gets when {@code requested} are asked for. */
    private static int count(int requested, int segmentCount) {
        return Math.max(1, Math.min(requested, segmentCount / MAX_PINNED_FRACTION));
    }

    /**
     * Places up to {@code len} bytes for {@code key} (a multiple of 512) from the calling thread's head, or, when no
     * segment is free, from the first other head that still has room; returns how many, 0 when no head has room.
     */
    int allocate(CacheKey key, int len) {
        int own = (int) (Thread.currentThread().threadId() % heads.length);
        int placed = heads[own].allocate(key, len, true);
        for (int i = 1; placed == 0 && i < heads.length; i++) {
            placed = heads[(own + i) % heads.length].allocate(key, len, false);
        }
        return placed;
    }
}
