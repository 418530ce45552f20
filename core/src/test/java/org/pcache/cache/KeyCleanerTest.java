package org.pcache.cache;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Freeing a segment cleans only the index ranges its key records covered: stale keys there are removed, live keys
 * (those of other segments, and keys that a reused segment's new generation placed there) stay, and no other subtree
 * is visited — the test holds the lock of every other subtree while the cleaner runs, so a sweep of the whole index
 * would never finish.
 */
class KeyCleanerTest {

    private static final int SECTOR = 512;
    private static final int STRETCHES = 16;
    private static final int CLEANED_STRETCH = 11;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @Test
    void aFreedSegmentCleansOnlyTheRangesOfItsRecords() throws Exception {
        KeyTree tree = new KeyTree(STRETCHES * KeyTree.SUBTREE_SIZE);
        CacheSegment freed = new CacheSegment(1, 0, 0);
        CacheSegment live = new CacheSegment(2, 0, 0);
        long base = CLEANED_STRETCH * KeyTree.SUBTREE_SIZE;
        List<CacheKey> freedKeys = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            CacheKey key = key(base + i * 16L * SECTOR, 8 * SECTOR, i % 2 == 0 ? freed : live);
            tree.subtree(key.off).insert(key);
            if (key.seg == freed) {
                freedKeys.add(key);
            }
        }
        for (int s = 0; s < STRETCHES; s++) {
            if (s != CLEANED_STRETCH) {
                tree.subtree(s * KeyTree.SUBTREE_SIZE).insert(key(s * KeyTree.SUBTREE_SIZE, 8 * SECTOR, live));
            }
        }
        long[] ranges = new long[2 * freedKeys.size()];
        for (int i = 0; i < freedKeys.size(); i++) {
            ranges[2 * i] = freedKeys.get(i).off;
            ranges[2 * i + 1] = freedKeys.get(i).len;
        }
        freed.bumpGen();
        CacheKey reused = key(base + 64 * 16L * SECTOR, 8 * SECTOR, freed);
        tree.subtree(reused.off).insert(reused);

        try (ExecutorService executor = Executors.newSingleThreadExecutor()) {
            KeyCleaner cleaner = new KeyCleaner(tree, executor);
            holdingOtherSubtrees(tree, 0, () -> {
                cleaner.segmentFreed(ranges);
                awaitNoStaleKeys(tree.subtree(base));
            });
        }

        KeySubtree cleaned = tree.subtree(base);
        synchronized (cleaned) {
            assertThat(cleaned.size()).as("live keys and the reused segment's key").isEqualTo(33);
            for (CacheKey key : freedKeys) {
                assertThat(key.inTree()).as(key.toString()).isFalse();
            }
            assertThat(reused.inTree()).isTrue();
        }
    }

    /** Runs {@code body} while holding the monitor of every subtree except the cleaned one. */
    private static void holdingOtherSubtrees(KeyTree tree, int from, Runnable body) {
        if (from == tree.subtreeCount()) {
            body.run();
        } else if (from == CLEANED_STRETCH) {
            holdingOtherSubtrees(tree, from + 1, body);
        } else {
            synchronized (tree.subtreeAt(from)) {
                holdingOtherSubtrees(tree, from + 1, body);
            }
        }
    }

    private static void awaitNoStaleKeys(KeySubtree subtree) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (hasStaleKey(subtree)) {
            assertThat(System.nanoTime()).as("stale keys removed within " + TIMEOUT + " while the other subtrees"
                    + " are locked").isLessThan(deadline);
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
        }
    }

    private static boolean hasStaleKey(KeySubtree subtree) {
        synchronized (subtree) {
            for (int i = 0; i < subtree.size(); i++) {
                if (subtree.keyAt(i).isStale()) {
                    return true;
                }
            }
            return false;
        }
    }

    private static CacheKey key(long off, int len, CacheSegment seg) {
        CacheKey key = new CacheKey(off, len, 0);
        key.place(seg, 0, seg.gen());
        return key;
    }
}
