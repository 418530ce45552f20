package org.pcache.cache;

import org.pcache.pmem.CacheDevice;

import java.util.function.Consumer;

/**
 * The cache's segments and which of them are in use (dm-pcache's seg_map and cache_segment.c): next-fit allocation
 * with wrap-around, reference-count release, and invalidation.
 *
 * <p>The bitmap is not persisted: replay rebuilds it from the log, so a segment a data head took but no persisted key
 * refers to is free again after a restart.
 *
 * <p>Invariants: a data allocation never takes the last {@link #LOG_RESERVE} free segments, so the kset log can always
 * be extended to record the keys of data already written (otherwise a cache full of unlogged data could not make
 * progress). A segment is free only after its generation bump is durable.
 *
 * <p>Persistence order: rule 5 — invalidation persists the next generation, then bumps it in memory, then clears the
 * segment's bit, so no key written before the reclaim can look valid once the segment is reused. A generation write
 * that fails leaves the segment in use at its old generation, in memory as on the media (it must not be reused with a
 * generation that may not be durable), and throws: the region failed, so the cache fails ({@link FailStopRegion}) and
 * the next open, which rebuilds this map from the log, frees it.
 *
 * <p>Threading: allocation and the bitmap are guarded by {@link #lock}; the lock is never held while calling out.
 * {@link #release} may be called from any thread.
 */
final class SegmentMap {

    static final int LOG_RESERVE = 1;

    private final CacheDevice device;
    private final CacheSegment[] segments;
    private final Object lock = new Object();
    /** Guarded by lock. */
    private final long[] used;
    /** Segments in use that hold the kset log rather than data, guarded by lock. */
    private final long[] log;
    /** Guarded by lock. */
    private int usedCount;
    /** Next-fit hint, guarded by lock. */
    private int hint;
    private final Consumer<long[]> onFree;

    /**
     * {@code onFree} runs after every segment that becomes free, on the thread that freed it, with the (offset,
     * length) pairs of the key records that pointed into it ({@link #releaseRecord}; none for a log segment).
     */
    SegmentMap(CacheDevice device, Consumer<long[]> onFree) {
        this.device = device;
        this.onFree = onFree;
        int count = device.segmentCount();
        this.segments = new CacheSegment[count];
        for (int id = 0; id < count; id++) {
            segments[id] = new CacheSegment(id, device.dataOffset(id), device.segmentGen(id));
        }
        this.used = new long[(count + 63) / 64];
        this.log = new long[used.length];
    }

    int count() {
        return segments.length;
    }

    CacheSegment segment(int id) {
        return segments[id];
    }

    int usedCount() {
        synchronized (lock) {
            return usedCount;
        }
    }

    /** A free segment for a data head, or null when only the log reserve is left. */
    CacheSegment allocateData() {
        return allocate(LOG_RESERVE);
    }

    /** A free segment for the kset log, or null when none is left. */
    CacheSegment allocateLog() {
        CacheSegment segment = allocate(0);
        if (segment != null) {
            synchronized (lock) {
                log[segment.id() >>> 6] |= 1L << segment.id();
            }
        }
        return segment;
    }

    /** Replay: the segment holds kset log. */
    void markLog(int id) {
        synchronized (lock) {
            markUsed(id);
            log[id >>> 6] |= 1L << id;
        }
    }

    /** What each segment holds now, by logical id. */
    SegmentUse[] uses() {
        SegmentUse[] uses = new SegmentUse[segments.length];
        synchronized (lock) {
            for (int id = 0; id < uses.length; id++) {
                uses[id] = !testBit(id) ? SegmentUse.FREE
                        : (log[id >>> 6] & (1L << id)) != 0 ? SegmentUse.LOG : SegmentUse.DATA;
            }
        }
        return uses;
    }

    private CacheSegment allocate(int reserve) {
        synchronized (lock) {
            if (segments.length - usedCount <= reserve) {
                return null;
            }
            int id = nextFree(hint);
            setBit(id);
            hint = id + 1 == segments.length ? 0 : id + 1;
            return segments[id];
        }
    }

    /** Replay: the segment holds log or live data. */
    void markUsed(int id) {
        synchronized (lock) {
            if (!testBit(id)) {
                setBit(id);
            }
        }
    }

    /** GC moved key_tail out of kset log segment {@code segment}: it is free (log segments carry no references). */
    void freeLog(CacheSegment segment) {
        clear(segment.id(), CacheSegment.NO_RANGES);
    }

    /** Drops the reference of key record {@code record} (GC reclaimed it), noting its range for the key cleaner. */
    void releaseRecord(CacheKey record) {
        record.seg.recordReleased(record.off, record.len);
        release(record.seg);
    }

    /** Drops one reference; the last one invalidates the segment. */
    void release(CacheSegment segment) {
        if (segment.release()) {
            invalidate(segment);
        }
    }

    private void invalidate(CacheSegment segment) {
        device.writeSegmentGen(segment.id(), segment.gen() + 1); // rule 5: the new generation is durable before reuse
        long[] ranges = segment.takeReleased(); // before reuse, so no range of the next generation is taken
        segment.bumpGen();
        clear(segment.id(), ranges);
    }

    private void clear(int id, long[] ranges) {
        synchronized (lock) {
            if (!testBit(id)) {
                throw new IllegalStateException("segment " + id + " freed while not in use");
            }
            used[id >>> 6] &= ~(1L << id);
            log[id >>> 6] &= ~(1L << id);
            usedCount--;
        }
        onFree.accept(ranges);
    }

    private int nextFree(int from) {
        for (int i = 0; i < segments.length; i++) {
            int id = from + i < segments.length ? from + i : from + i - segments.length;
            if (!testBit(id)) {
                return id;
            }
        }
        throw new IllegalStateException("no free segment although usedCount=" + usedCount);
    }

    private boolean testBit(int id) {
        return (used[id >>> 6] & (1L << id)) != 0;
    }

    private void setBit(int id) {
        used[id >>> 6] |= 1L << id;
        usedCount++;
    }
}
