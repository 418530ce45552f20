package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * Reclaims written-back ksets from key_tail, never past dirty_tail, once segment usage reaches gc_percent
 * (dm-pcache's cache_gc): each live key drops its reference on its data segment, segments that reach zero are
 * invalidated and freed, and a LAST kset frees the log segment it ends.
 *
 * <p>Persistence order: rule 5 — GC never passes dirty_tail; a segment's new generation is durable before the segment
 * is freed ({@link SegmentMap#release}); key_tail is persisted after the kset's references are dropped, so a crash in
 * between leaves keys whose segments moved on, which replay sees as stale.
 *
 * <p>Data-less keys hold no reference: a ZERO or DISCARD record leaving the log takes its keys out of the index
 * instead (from then on the backing device, which writeback gave the write-zeroes or discard, answers for the range).
 *
 * <p>Only keys whose generation still matches hold a reference (stale keys were skipped by replay), so only those are
 * released, and only their data CRC is checked; a mismatch is counted, not fatal, since the data was written back
 * already. A kset that cannot be decoded stops GC for good, before any of its references is dropped, and fails the
 * cache ({@link CacheWorker}), as does a failed generation or key_tail write: GC never goes on past a record it could
 * not make durable.
 *
 * <p>Threading: all work runs on the worker thread {@code pcache-gc}.
 */
final class GarbageCollector extends CacheWorker {

    private static final Logger LOG = LoggerFactory.getLogger(GarbageCollector.class);
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final CacheDevice device;
    private final SegmentMap segments;
    private final KsetLogWriter logWriter;
    private final KeyTree tree;
    private final KsetReader reader;
    private final boolean dataCrc;
    private final List<CacheKey> keys = new ArrayList<>(KsetOnMedia.KEYS_MAX);
    private final LongAdder ksetsReclaimed = new LongAdder();
    private final LongAdder dataCrcErrors = new LongAdder();
    /** Log sequence number of key_tail ({@link KsetLogWriter}): 0 at open, one more per kset reclaimed. */
    private long keyTailSeq;

    GarbageCollector(CacheDevice device, FailStopRegion failStop, SegmentMap segments, KsetLogWriter logWriter,
                     KeyTree tree, long backingSize, boolean dataCrc) {
        super("pcache-gc", failStop, IDLE_NANOS);
        this.device = device;
        this.tree = tree;
        this.segments = segments;
        this.logWriter = logWriter;
        this.reader = new KsetReader(device, segments, backingSize);
        this.dataCrc = dataCrc;
    }

    GcStatus status() {
        return new GcStatus(state(), ksetsReclaimed.sum(), dataCrcErrors.sum());
    }

    /** Reclaims one kset; kicked when writeback moved, the cache filled up, or gc_percent changed. */
    @Override
    boolean step() throws CorruptMediaException {
        CachePos tail = device.keyTail();
        if (keyTailSeq >= logWriter.dirtyTailSeq() || !aboveThreshold()) {
            return false;
        }
        KsetOnMedia.Status status = reader.read(tail);
        if (!status.valid()) {
            throw reader.invalid(status);
        }
        CachePos next = reader.next();
        if (status == KsetOnMedia.Status.LAST) {
            device.writeKeyTail(next);
            segments.freeLog(segments.segment(tail.seg()));
        } else {
            releaseKeys();
            device.writeKeyTail(next);
        }
        keyTailSeq++;
        ksetsReclaimed.increment();
        return true;
    }

    /** dm-pcache's threshold: segs_used >= n_segs * gc_percent / 100. */
    private boolean aboveThreshold() {
        return segments.usedCount() >= segments.count() * device.cacheInfo().gcPercent() / 100;
    }

    private void releaseKeys() throws CorruptMediaException {
        keys.clear();
        for (int i = 0; i < reader.keyNum(); i++) {
            keys.add(reader.key(i));
        }
        for (int i = 0; i < keys.size(); i++) {
            CacheKey key = keys.get(i);
            if (key.isDataless()) {
                if (key.readsZeroes()) {
                    dropDataless(key);
                }
                continue;
            }
            if (key.segGen < key.seg.gen()) {
                continue;
            }
            if (dataCrc) {
                try {
                    reader.verifyCrc(i, key);
                } catch (CorruptMediaException e) {
                    dataCrcErrors.increment();
                    LOG.warn("reclaiming a key whose data CRC does not match (it was written back already): {}",
                            e.getMessage());
                }
            }
            segments.releaseRecord(key);
        }
    }

    /**
     * The ZERO or DISCARD record {@code record} of the kset at key_tail leaves the log: removes from the index the
     * pieces of it, and of any data-less key in its range born at or before this kset (all are in ksets up to it, see
     * {@link Kset#append}). Keys born later belong to later ksets and stay.
     */
    private void dropDataless(CacheKey record) {
        long reclaimed = keyTailSeq;
        KeySubtree subtree = tree.subtree(record.off);
        synchronized (subtree) {
            subtree.removeIf(record.off, record.end(), key -> key.isDataless() && key.segGen <= reclaimed);
        }
    }
}
