package org.pcache.cache;

/**
 * The index: one {@link KeySubtree} per 4 MiB of the backing device (dm-pcache's req_key_tree), so requests to
 * different 4 MiB stretches never contend for a lock. Keys never cross a 4 MiB boundary.
 */
final class KeyTree {

    static final int SUBTREE_SHIFT = 22;
    static final long SUBTREE_SIZE = 1L << SUBTREE_SHIFT;

    private final KeySubtree[] subtrees;

    KeyTree(long backingSize) {
        long n = Math.max(1, (backingSize + SUBTREE_SIZE - 1) >>> SUBTREE_SHIFT);
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("backing device of " + backingSize + " bytes is too large to index");
        }
        subtrees = new KeySubtree[(int) n];
        for (int i = 0; i < subtrees.length; i++) {
            subtrees[i] = new KeySubtree();
        }
    }

    /** The subtree holding offset {@code off}. */
    KeySubtree subtree(long off) {
        return subtrees[subtreeIndex(off)];
    }

    /** Index of the subtree holding offset {@code off}, for {@link #subtreeAt}. */
    static int subtreeIndex(long off) {
        return (int) (off >>> SUBTREE_SHIFT);
    }

    int subtreeCount() {
        return subtrees.length;
    }

    KeySubtree subtreeAt(int index) {
        return subtrees[index];
    }

    /** End of the 4 MiB stretch holding {@code off}: pieces of a request are cut there. */
    static long stretchEnd(long off) {
        return (off | (SUBTREE_SIZE - 1)) + 1;
    }
}
