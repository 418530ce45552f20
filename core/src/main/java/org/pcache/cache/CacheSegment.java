package org.pcache.cache;

import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.StampedLock;

/**
 * A 16 MiB segment of the cache as the cache uses it: a logical id, where its data area lies in the region, its
 * generation and, while it holds data, a reference count (dm-pcache's pcache_cache_segment).
 *
 * <p>Invariants: a data segment's count is one for the data head pointing into it plus one per key record allocated
 * in it that the log still holds; when it reaches zero the segment is invalidated ({@link SegmentMap}), which bumps
 * {@link #gen()} before the segment can be handed out again, so every key that pointed into it becomes stale. Kset log
 * segments are not reference counted.
 *
 * <p>A data segment also collects the backing ranges of the key records that dropped their reference in the current
 * generation, so that the index can be cleaned of exactly those once the segment is freed ({@link KeyCleaner}).
 *
 * <p>Threading: {@link #gen()} is read without a lock; the released ranges are guarded by this object's monitor. A reader that copies data out of the segment brackets the copy
 * with {@link #beginRead()} / {@link #validateRead(long)}; a generation bump takes the write side of the same lock, so a
 * copy that validates did not overlap a reclaim (and therefore not a reuse, which only follows a reclaim).
 */
final class CacheSegment {

    static final long[] NO_RANGES = new long[0];

    private final int id;
    private final long dataOffset;
    private final AtomicInteger refs = new AtomicInteger();
    private final StampedLock genLock = new StampedLock();
    private volatile long gen;
    /** (offset, length) pairs; guarded by this. */
    private long[] released = NO_RANGES;
    /** Used entries of released; guarded by this. */
    private int releasedLength;

    CacheSegment(int id, long dataOffset, long gen) {
        this.id = id;
        this.dataOffset = dataOffset;
        this.gen = gen;
    }

    int id() {
        return id;
    }

    /** Region byte offset of the segment's data area. */
    long dataOffset() {
        return dataOffset;
    }

    long gen() {
        return gen;
    }

    int refs() {
        return refs.get();
    }

    void retain() {
        refs.incrementAndGet();
    }

    /** Takes {@code n} references at once (replay, which counts a segment's live key records first). */
    void retain(int n) {
        refs.addAndGet(n);
    }

    /** Drops one reference; true when it was the last one and the segment must be invalidated. */
    boolean release() {
        int left = refs.decrementAndGet();
        if (left < 0) {
            throw new IllegalStateException("segment " + id + " released more often than retained");
        }
        return left == 0;
    }

    /** Notes that the key record for {@code [off, off + len)} of the backing device is about to drop its reference. */
    synchronized void recordReleased(long off, int len) {
        if (releasedLength == released.length) {
            released = Arrays.copyOf(released, Math.max(64, releasedLength * 2));
        }
        released[releasedLength++] = off;
        released[releasedLength++] = len;
    }

    /** The ranges noted since the last call, as (offset, length) pairs; forgets them. */
    synchronized long[] takeReleased() {
        long[] taken = releasedLength == 0 ? NO_RANGES : Arrays.copyOf(released, releasedLength);
        released = NO_RANGES;
        releasedLength = 0;
        return taken;
    }

    /** Starts an optimistic read of the segment's data; pass the stamp to {@link #validateRead(long)}. */
    long beginRead() {
        return genLock.tryOptimisticRead();
    }

    /** True when no generation bump happened since {@code stamp}: the data read meanwhile is intact. */
    boolean validateRead(long stamp) {
        return genLock.validate(stamp);
    }

    /** Advances the generation, making every key that points here stale; returns the new generation. */
    long bumpGen() {
        long stamp = genLock.writeLock();
        try {
            gen = gen + 1;
            return gen;
        } finally {
            genLock.unlockWrite(stamp);
        }
    }

    @Override
    public String toString() {
        return "seg=" + id + " gen=" + gen + " refs=" + refs.get();
    }
}
