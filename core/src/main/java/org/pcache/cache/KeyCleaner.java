package org.pcache.cache;

import java.util.Arrays;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Removes stale keys from the index after a segment is reclaimed (dm-pcache's clean_work). Lookups already ignore
 * stale keys; this only gives their memory back.
 *
 * <p>Only the backing ranges of the freed segment's key records are visited ({@link SegmentMap} collects them as GC
 * releases the records): every key in the index that points into a data segment is a piece of one of its records, so
 * the stale keys lie in those ranges, and the cost of freeing a segment follows the records it held, not the size of
 * the index. Each range is cleaned under its subtree's lock.
 *
 * <p>Threading: cleaning runs on the executor; ranges of segments freed while a run is queued join that run.
 */
final class KeyCleaner {

    private final KeyTree tree;
    private final Executor executor;
    private final Queue<long[]> pending = new ConcurrentLinkedQueue<>();
    private final AtomicBoolean queued = new AtomicBoolean();

    KeyCleaner(KeyTree tree, Executor executor) {
        this.tree = tree;
        this.executor = executor;
    }

    /**
     * A segment was freed; {@code ranges} holds the (offset, length) pairs of the key records that pointed into it.
     * Cheap: the cleaning happens on the executor.
     */
    void segmentFreed(long[] ranges) {
        if (ranges.length == 0) {
            return;
        }
        pending.add(ranges);
        if (queued.compareAndSet(false, true)) {
            try {
                executor.execute(this::clean);
            } catch (RejectedExecutionException e) {
                queued.set(false); // closing: the index is about to be dropped anyway
            }
        }
    }

    private void clean() {
        queued.set(false);
        long[] ranges;
        while ((ranges = pending.poll()) != null) {
            clean(ranges);
        }
    }

    /** Cleans the ranges in subtree order, each subtree under one lock hold, so the index is walked once, forward. */
    private void clean(long[] ranges) {
        long[] order = new long[ranges.length / 2];
        for (int i = 0; i < order.length; i++) {
            order[i] = (long) KeyTree.subtreeIndex(ranges[2 * i]) << 32 | i;
        }
        Arrays.sort(order);
        int i = 0;
        while (i < order.length) {
            int subtreeIndex = (int) (order[i] >>> 32);
            KeySubtree subtree = tree.subtreeAt(subtreeIndex);
            synchronized (subtree) {
                for (; i < order.length && (int) (order[i] >>> 32) == subtreeIndex; i++) {
                    int pair = 2 * (int) order[i];
                    subtree.removeIf(ranges[pair], ranges[pair] + ranges[pair + 1], CacheKey::isStale);
                }
            }
        }
    }
}
