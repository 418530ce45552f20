package org.pcache.cache;

import java.util.Arrays;
import java.util.function.Predicate;

/**
 * The keys of one 4 MiB stretch of the backing device (dm-pcache's cache_subtree), kept as a sorted array of
 * non-overlapping extents. Also used on its own by writeback to collapse the keys of one kset.
 *
 * <p>Invariants: keys are sorted by offset and never overlap, so their ends are sorted too; every key in the array is
 * {@link CacheKey#inTree() in the tree} and has {@code len > 0}. While every key lies in one stretch ({@link #stretch}
 * at least 0), {@code bounds[i]} holds the start (high 16 bits) and end (low 16 bits) of {@code keys[i]} in sectors
 * past the stretch start.
 *
 * <p>Threading: callers hold this object's monitor around every call and around any use of the keys they got from it.
 * A caller that shortens a key in the array does it through {@link #cutBack}.
 */
final class KeySubtree {

    /*
     * Implementation notes.
     *
     * A sorted array rather than a red-black tree: a subtree covers 4 MiB, so it holds at most a few thousand keys and
     * usually a handful; binary search plus an arraycopy is cheaper than tree rebalancing and costs 8 bytes of heap per
     * extent (a reference and its bounds, below) instead of a node. The overlap cases of dm-pcache's
     * cache_insert_fixup reduce to the first and last overlapping keys, because every key strictly between them lies
     * inside the new one:
     *
     *   new key K:                 |========K========|
     *   contained (K inside T):  |--------------T----------|   split T (EMPTY T: keep only the left piece)
     *   head:                 |----T----|                       cut T's back to K's start
     *   contain (T inside K):           |--T--|                 remove T
     *   tail:                                      |----T----|  cut T's front to K's end (EMPTY T: remove)
     *
     * The binary search and the overlap scan read the bounds from an int array beside the keys, not from the keys:
     * each key is an object somewhere in the heap, and with a large index every probe of a search over them was a
     * cache miss (85 % of replay's time; see docs/performance.md). Start and end of a key of the stretch are at most
     * 8192 sectors past its start, so one int holds both: 4 bytes per extent. Ends alone (a char each) would leave one
     * key to read per insert, the overlap check, which was still 40 % of replay. Writeback's collapse tree mixes
     * stretches; once it does, bounds are no longer kept (stretch is MIXED) and the search reads the keys, as it is
     * small.
     */

    private static final CacheKey[] NONE = new CacheKey[0];
    private static final int[] NO_BOUNDS = new int[0];
    private static final int SECTOR_SHIFT = 9;
    private static final long SECTOR_MASK = (1L << SECTOR_SHIFT) - 1;
    /** {@link #stretch} before the first key: the next key decides. */
    private static final long UNSET = -1;
    /** {@link #stretch} once keys of several stretches (or unaligned ones) were inserted. */
    private static final long MIXED = -2;

    private CacheKey[] keys = NONE;
    /** Same length as keys; meaningful for the first count entries while stretch >= 0. */
    private int[] bounds = NO_BOUNDS;
    /** Start of the stretch every key lies in, or UNSET, or MIXED. */
    private long stretch = UNSET;
    private int count;

    int size() {
        return count;
    }

    CacheKey keyAt(int index) {
        return keys[index];
    }

    /** Index of the first key that ends after {@code off}: where a walk over {@code [off, ...)} starts. */
    int firstEndingAfter(long off) {
        if (stretch < 0) {
            return firstEndingAfterByKeys(off);
        }
        long past = off - stretch;
        if (past < 0) {
            return 0;
        }
        if (past >= KeyTree.SUBTREE_SIZE) {
            return count;
        }
        // end * 512 > past exactly when end > floor(past / 512), also for an unaligned off.
        int sectors = (int) (past >>> SECTOR_SHIFT);
        int low = 0;
        int high = count;
        while (low < high) {
            int mid = (low + high) >>> 1;
            if ((bounds[mid] & 0xFFFF) <= sectors) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        return low;
    }

    private int firstEndingAfterByKeys(long off) {
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
        admit(key);
        int lo = firstEndingAfter(key.off);
        int hi = lo;
        while (hi < count && startsBefore(hi, key.end())) {
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
            place(at++, left);
        }
        place(at++, key);
        key.enterTree();
        if (right != null) {
            place(at, right);
            right.enterTree();
        }
    }

    /**
     * Inserts the first {@code n} keys of {@code logOrder} as {@link #insert} would one by one in that order, so later
     * keys win where they overlap earlier ones. Into an empty subtree, keys that do not overlap one another (replay's
     * usual case) are sorted and placed in one pass instead.
     */
    void load(CacheKey[] logOrder, int n) {
        if (!loadDisjoint(logOrder, n)) {
            for (int i = 0; i < n; i++) {
                insert(logOrder[i]);
            }
        }
    }

    /**
     * Fills an empty subtree with keys of one stretch that do not overlap; false, changing nothing, when they do not
     * all qualify. Leaves what one-by-one inserts would: keys sorted by offset, their bounds, the stretch.
     */
    private boolean loadDisjoint(CacheKey[] logOrder, int n) {
        if (count != 0 || n == 0) {
            return false;
        }
        long start = logOrder[0].off & -KeyTree.SUBTREE_SIZE;
        if (stretch != UNSET && stretch != start) {
            return false;
        }
        // Per key: start sector (bits 48-61), end sector (32-47), position in logOrder (0-31), so sorting these
        // sorts the keys by offset without reading them again.
        long[] order = new long[n];
        for (int i = 0; i < n; i++) {
            CacheKey key = logOrder[i];
            if (key.isEmpty() || key.len <= 0 || !encodable(key, start)) {
                return false;
            }
            long first = (key.off - start) >>> SECTOR_SHIFT;
            long last = (key.end() - start) >>> SECTOR_SHIFT;
            order[i] = first << 48 | last << 32 | i;
        }
        Arrays.sort(order);
        CacheKey[] sorted = new CacheKey[n];
        int[] sortedBounds = new int[n];
        int previousEnd = 0;
        for (int j = 0; j < n; j++) {
            int bound = (int) (order[j] >>> 32);
            if (bound >>> 16 < previousEnd) {
                return false;
            }
            previousEnd = bound & 0xFFFF;
            sortedBounds[j] = bound;
            sorted[j] = logOrder[(int) order[j]];
        }
        for (CacheKey key : sorted) {
            key.enterTree();
        }
        keys = sorted;
        bounds = sortedBounds;
        stretch = start;
        count = n;
        return true;
    }

    /** Inserts an EMPTY placeholder into a gap the caller found free under the same lock hold. */
    void insertPlaceholder(CacheKey placeholder) {
        int at = firstEndingAfter(placeholder.off);
        if (at < count && startsBefore(at, placeholder.end())) {
            throw new IllegalStateException("placeholder " + placeholder + " overlaps " + keys[at]);
        }
        admit(placeholder);
        open(at, 0, 1);
        place(at, placeholder);
        placeholder.enterTree();
    }

    /** Drops the last {@code n} bytes of {@code key}, which is in this subtree. */
    void cutBack(CacheKey key, int n) {
        int at = indexOf(key);
        key.cutBack(n);
        place(at, key);
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
        removeAt(indexOf(key));
    }

    private int indexOf(CacheKey key) {
        int at = firstEndingAfter(key.off);
        if (at >= count || keys[at] != key) {
            throw new IllegalStateException(key + " marked in tree but not found");
        }
        return at;
    }

    /** Removes the keys overlapping {@code [off, end)} that match {@code doomed}; returns how many. */
    int removeIf(long off, long end, Predicate<CacheKey> doomed) {
        int lo = firstEndingAfter(off);
        int kept = lo;
        int hi = lo;
        for (; hi < count && startsBefore(hi, end); hi++) {
            CacheKey key = keys[hi];
            if (doomed.test(key)) {
                key.leaveTree();
            } else {
                bounds[kept] = bounds[hi];
                keys[kept++] = key;
            }
        }
        int removed = hi - kept;
        if (removed > 0) {
            open(kept, removed, 0);
        }
        return removed;
    }

    /** {@link #liveKinds} bit: a CLEAN key overlaps. */
    static final int LIVE_CLEAN = 1;
    /** {@link #liveKinds} bit: a dirty key overlaps. */
    static final int LIVE_DIRTY = 2;

    /**
     * What the keys overlapping {@code [off, end)} hold: {@link #LIVE_CLEAN} and {@link #LIVE_DIRTY} bits, 0 when
     * none of them holds data (EMPTY placeholders and stale keys do not count).
     */
    int liveKinds(long off, long end) {
        int kinds = 0;
        for (int i = firstEndingAfter(off); i < count && startsBefore(i, end); i++) {
            CacheKey key = keys[i];
            if (!key.isEmpty() && !key.isStale()) {
                kinds |= key.isDirty() ? LIVE_DIRTY : LIVE_CLEAN;
            }
        }
        return kinds;
    }

    /** Removes every key. */
    void clear() {
        for (int i = 0; i < count; i++) {
            keys[i].leaveTree();
        }
        keys = NONE;
        bounds = NO_BOUNDS;
        stretch = UNSET;
        count = 0;
    }

    /** Keeps {@link #stretch} true for {@code key} before it (or a piece of it) goes in. */
    private void admit(CacheKey key) {
        if (stretch == MIXED) {
            return;
        }
        long start = key.off & -KeyTree.SUBTREE_SIZE;
        boolean encodable = encodable(key, start);
        if (stretch == UNSET && count == 0 && encodable) {
            stretch = start;
        } else if (stretch != start || !encodable) {
            stretch = MIXED;
        }
    }

    /** Whether {@code key} is sector-aligned and lies in the stretch starting at {@code start}. */
    private static boolean encodable(CacheKey key, long start) {
        return ((key.off | key.len) & SECTOR_MASK) == 0 && key.off >= start
                && key.end() <= start + KeyTree.SUBTREE_SIZE;
    }

    /** Whether the key at slot {@code at} starts before {@code end}. */
    private boolean startsBefore(int at, long end) {
        if (stretch < 0) {
            return keys[at].off < end;
        }
        return stretch + ((long) (bounds[at] >>> 16) << SECTOR_SHIFT) < end;
    }

    /** Puts {@code key} at slot {@code at}, with its bounds. */
    private void place(int at, CacheKey key) {
        keys[at] = key;
        if (stretch >= 0) {
            int start = (int) ((key.off - stretch) >>> SECTOR_SHIFT);
            int end = (int) ((key.end() - stretch) >>> SECTOR_SHIFT);
            bounds[at] = start << 16 | end;
        }
    }

    /** Replaces {@code replaced} slots at {@code at} by {@code added} (unset) slots. */
    private void open(int at, int replaced, int added) {
        int newCount = count - replaced + added;
        int tail = count - at - replaced;
        if (newCount > keys.length) {
            int capacity = Math.max(4, newCount + (newCount >> 1));
            CacheKey[] grown = new CacheKey[capacity];
            System.arraycopy(keys, 0, grown, 0, at);
            System.arraycopy(keys, at + replaced, grown, at + added, tail);
            keys = grown;
            int[] grownBounds = new int[capacity];
            System.arraycopy(bounds, 0, grownBounds, 0, at);
            System.arraycopy(bounds, at + replaced, grownBounds, at + added, tail);
            bounds = grownBounds;
        } else {
            System.arraycopy(keys, at + replaced, keys, at + added, tail);
            System.arraycopy(bounds, at + replaced, bounds, at + added, tail);
            if (newCount < count) {
                Arrays.fill(keys, newCount, count, null);
            }
        }
        count = newCount;
    }
}
