package org.pcache.cache;

import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Removes stale keys from the index after segments are reclaimed (dm-pcache's clean_work). Lookups already ignore
 * stale keys; this only gives their memory back. Each subtree is swept under its own lock, one at a time.
 *
 * <p>Threading: sweeps run on the executor; requests to sweep while one is queued are merged.
 */
final class KeyCleaner {

    private final KeyTree tree;
    private final Executor executor;
    private final AtomicBoolean queued = new AtomicBoolean();

    KeyCleaner(KeyTree tree, Executor executor) {
        this.tree = tree;
        this.executor = executor;
    }

    /** Asks for a sweep; cheap to call after every reclaim. */
    void schedule() {
        if (queued.compareAndSet(false, true)) {
            try {
                executor.execute(this::sweep);
            } catch (RejectedExecutionException e) {
                queued.set(false); // closing: the index is about to be dropped anyway
            }
        }
    }

    private void sweep() {
        queued.set(false);
        for (int i = 0; i < tree.subtreeCount(); i++) {
            KeySubtree subtree = tree.subtreeAt(i);
            synchronized (subtree) {
                if (subtree.size() > 0) {
                    subtree.removeIf(CacheKey::isStale);
                }
            }
        }
    }
}
