package org.pcache.cache;

import java.util.Arrays;
import java.util.function.Predicate;

/**
 * The keys of one 4 MiB stretch of the backing device (dm-pcache's cache_subtree), kept as a sorted array of
 * non-overlapping extents. Also used on its own by writeback to collapse the keys of one kset.
 *
 * <p>Invariants: keys are sorted by offset and never overlap, so their ends are sorted too; every key in the array is
 * {@link CacheKey#inTree() in the tree} and has {@code len > 0}.
 *
 * <p>Threading: callers hold this object's monitor around every call and around any use of the keys they got from it.
 */
final class KeySubtree {

    /*
     * Implementation notes.
     *
     * A sorted array rather than a red-black tree: a subtree covers 4 MiB, so it holds at most a few thousand keys and
     * usually a handful; binary search plus an arraycopy is cheaper than tree rebalancing and costs 4 bytes of heap per
     * extent instead of a node. The overlap cases of dm-pcache's cache_insert_fixup reduce to the first and last
     * overlapping keys, because every key strictly between them lies inside the new one:
     *
     *   new key K:                 |========K========|
     *   contained (K inside T):  |--------------T----------|   split T (EMPTY T: keep only the left piece)
     *   head:                 |----T----|                       cut T's back to K's start
     *   contain (T inside K):           |--T--|                 remove T
     *   tail:                                      |----T----|  cut T's front to K's end (EMPTY T: remove)
     */

    private static final CacheKey[] NONE = new CacheKey[0];

    private CacheKey[] keys = NONE;
    private int count;

    int size() {
        return count;
    }

    CacheKey keyAt(int index) {
        return keys[index];
    }

    /** Index of the first key that ends after {@code off}: where a walk over {@code [off, ...)} starts. */
    int firstEndingAfter(long off) {
        int low = 0;
        int high = count;
        while (low < high) {
            int mid = (low + high) >>> 1;
            if (keys[mid].end() <= off) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        return low;
    }

    /** Inserts a non-EMPTY key, cutting, splitting or removing the keys it overlaps. */
    void insert(CacheKey key) {
        if (key.isEmpty() || key.len <= 0) {
            throw new IllegalArgumentException("cannot insert " + key);
        }
        int lo = firstEndingAfter(key.off);
        int hi = lo;
        while (hi < count && keys[hi].off < key.end()) {
            hi++;
        }
        CacheKey left = null;
        CacheKey right = null;
        if (lo < hi) {
            CacheKey first = keys[lo];
            CacheKey last = keys[hi - 1];
            if (first.off < key.off) {
                if (first.end() > key.end() && !first.isEmpty()) {
                    right = first.splitAt((int) (key.end() - first.off));
                }
                first.cutBack((int) (first.end() - key.off));
                left = first;
            }
            if (last.off >= key.off && last.end() > key.end() && !last.isEmpty()) {
                last.cutFront((int) (key.end() - last.off));
                right = last;
            }
            for (int i = lo; i < hi; i++) {
                if (keys[i] != left && keys[i] != right) {
                    keys[i].leaveTree();
                }
            }
        }
        int replaced = hi - lo;
        int added = (left == null ? 0 : 1) + 1 + (right == null ? 0 : 1);
        open(lo, replaced, added);
        int at = lo;
        if (left != null) {
            keys[at++] = left;
        }
        keys[at++] = key;
        key.enterTree();
        if (right != null) {
            keys[at] = right;
            right.enterTree();
        }
    }

    /** Inserts an EMPTY placeholder into a gap the caller found free under the same lock hold. */
    void insertPlaceholder(CacheKey placeholder) {
        int at = firstEndingAfter(placeholder.off);
        if (at < count && keys[at].off < placeholder.end()) {
            throw new IllegalStateException("placeholder " + placeholder + " overlaps " + keys[at]);
        }
        open(at, 0, 1);
        keys[at] = placeholder;
        placeholder.enterTree();
    }

    /** Removes the key at {@code index}. */
    void removeAt(int index) {
        keys[index].leaveTree();
        open(index, 1, 0);
    }

    /** Removes {@code key} if it is still here. */
    void remove(CacheKey key) {
        if (!key.inTree()) {
            return;
        }
        int at = firstEndingAfter(key.off);
        if (at >= count || keys[at] != key) {
            throw new IllegalStateException(key + " marked in tree but not found");
        }
        removeAt(at);
    }

    /** Removes the keys matching {@code doomed}; returns how many. */
    int removeIf(Predicate<CacheKey> doomed) {
        int kept = 0;
        for (int i = 0; i < count; i++) {
            CacheKey key = keys[i];
            if (doomed.test(key)) {
                key.leaveTree();
            } else {
                keys[kept++] = key;
            }
        }
        int removed = count - kept;
        Arrays.fill(keys, kept, count, null);
        count = kept;
        return removed;
    }

    /** Removes every key. */
    void clear() {
        for (int i = 0; i < count; i++) {
            keys[i].leaveTree();
        }
        keys = NONE;
        count = 0;
    }

    /** Replaces {@code replaced} slots at {@code at} by {@code added} (unset) slots. */
    private void open(int at, int replaced, int added) {
        int newCount = count - replaced + added;
        int tail = count - at - replaced;
        if (newCount > keys.length) {
            CacheKey[] grown = new CacheKey[Math.max(4, newCount + (newCount >> 1))];
            System.arraycopy(keys, 0, grown, 0, at);
            System.arraycopy(keys, at + replaced, grown, at + added, tail);
            keys = grown;
        } else {
            System.arraycopy(keys, at + replaced, keys, at + added, tail);
            if (newCount < count) {
                Arrays.fill(keys, newCount, count, null);
            }
        }
        count = newCount;
    }
}
