package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class KeySubtreeTest {

    private static final int SECTOR = 512;

    private int nextSegId;

    private CacheKey dirty(long off, int len) {
        CacheKey key = new CacheKey(off, len, 0);
        key.place(new CacheSegment(nextSegId++, 0, 0), 0, 0);
        return key;
    }

    @Test
    void newKeyInsideOldSplitsIt() {
        KeySubtree tree = new KeySubtree();
        CacheKey old = dirty(0, 8 * SECTOR);
        tree.insert(old);
        CacheKey key = dirty(2 * SECTOR, 2 * SECTOR);
        tree.insert(key);

        assertThat(tree.size()).isEqualTo(3);
        assertThat(tree.keyAt(0)).isSameAs(old);
        assertThat(old.len).isEqualTo(2 * SECTOR);
        assertThat(tree.keyAt(1)).isSameAs(key);
        CacheKey right = tree.keyAt(2);
        assertThat(right.off).isEqualTo(4 * SECTOR);
        assertThat(right.len).isEqualTo(4 * SECTOR);
        assertThat(right.seg).isSameAs(old.seg);
        assertThat(right.segOff).isEqualTo(4 * SECTOR);
    }

    @Test
    void newKeyOverTailCutsTheFrontOfTheOld() {
        KeySubtree tree = new KeySubtree();
        CacheKey old = dirty(4 * SECTOR, 4 * SECTOR);
        tree.insert(old);
        tree.insert(dirty(2 * SECTOR, 4 * SECTOR));

        assertThat(tree.keyAt(1)).isSameAs(old);
        assertThat(old.off).isEqualTo(6 * SECTOR);
        assertThat(old.len).isEqualTo(2 * SECTOR);
        assertThat(old.segOff).isEqualTo(2 * SECTOR);
    }

    @Test
    void newKeyOverHeadCutsTheBackOfTheOld() {
        KeySubtree tree = new KeySubtree();
        CacheKey old = dirty(0, 4 * SECTOR);
        tree.insert(old);
        tree.insert(dirty(2 * SECTOR, 4 * SECTOR));

        assertThat(tree.keyAt(0)).isSameAs(old);
        assertThat(old.len).isEqualTo(2 * SECTOR);
        assertThat(old.segOff).isZero();
    }

    @Test
    void newKeyCoveringOldRemovesIt() {
        KeySubtree tree = new KeySubtree();
        CacheKey a = dirty(SECTOR, SECTOR);
        CacheKey b = dirty(3 * SECTOR, SECTOR);
        tree.insert(a);
        tree.insert(b);
        CacheKey key = dirty(0, 8 * SECTOR);
        tree.insert(key);

        assertThat(tree.size()).isEqualTo(1);
        assertThat(tree.keyAt(0)).isSameAs(key);
        assertThat(a.inTree()).isFalse();
        assertThat(b.inTree()).isFalse();
    }

    @Test
    void placeholderContainingNewKeyKeepsOnlyItsLeftPart() {
        KeySubtree tree = new KeySubtree();
        CacheKey placeholder = CacheKey.placeholder(0, 8 * SECTOR);
        tree.insertPlaceholder(placeholder);
        tree.insert(dirty(2 * SECTOR, 2 * SECTOR));

        assertThat(tree.size()).isEqualTo(2);
        assertThat(tree.keyAt(0)).isSameAs(placeholder);
        assertThat(placeholder.len).isEqualTo(2 * SECTOR);
    }

    @Test
    void placeholderOverlappingNewKeysTailIsRemoved() {
        KeySubtree tree = new KeySubtree();
        CacheKey placeholder = CacheKey.placeholder(4 * SECTOR, 4 * SECTOR);
        tree.insertPlaceholder(placeholder);
        tree.insert(dirty(2 * SECTOR, 4 * SECTOR));

        assertThat(tree.size()).isEqualTo(1);
        assertThat(placeholder.inTree()).isFalse();
    }

    @Test
    void placeholderMayOnlyFillAGap() {
        KeySubtree tree = new KeySubtree();
        tree.insert(dirty(0, 4 * SECTOR));
        assertThatThrownBy(() -> tree.insertPlaceholder(CacheKey.placeholder(2 * SECTOR, 4 * SECTOR)))
                .isInstanceOf(IllegalStateException.class);
    }

    @Test
    void emptyKeysCannotBeInsertedAsData() {
        KeySubtree tree = new KeySubtree();
        assertThatThrownBy(() -> tree.insert(CacheKey.placeholder(0, SECTOR)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void firstEndingAfterFindsTheKeyCoveringAnOffset() {
        KeySubtree tree = new KeySubtree();
        tree.insert(dirty(0, 2 * SECTOR));
        tree.insert(dirty(4 * SECTOR, 2 * SECTOR));

        assertThat(tree.firstEndingAfter(0)).isZero();
        assertThat(tree.firstEndingAfter(SECTOR)).isZero();
        assertThat(tree.firstEndingAfter(2 * SECTOR)).isEqualTo(1);
        assertThat(tree.firstEndingAfter(5 * SECTOR)).isEqualTo(1);
        assertThat(tree.firstEndingAfter(6 * SECTOR)).isEqualTo(2);
    }

    /**
     * Random inserts of data keys and placeholders against a per-sector model of what every sector maps to: a data
     * sector maps to (segment, sector of segment), a placeholder sector to the placeholder.
     */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4, 5, 6, 7, 8})
    void randomInsertsMatchAPerSectorModel(long seed) {
        randomInserts(seed, 0);
    }

    /** The same with keys on both sides of a 4 MiB boundary, as in writeback's collapse of a kset. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void randomInsertsAcrossStretchesMatchAPerSectorModel(long seed) {
        randomInserts(seed, KeyTree.SUBTREE_SIZE / SECTOR - 128);
    }

    @Test
    void cutBackShortensAKeyInPlace() {
        KeySubtree tree = new KeySubtree();
        CacheKey placeholder = CacheKey.placeholder(4 * SECTOR, 4 * SECTOR);
        tree.insert(dirty(0, 2 * SECTOR));
        tree.insertPlaceholder(placeholder);
        tree.insert(dirty(8 * SECTOR, 2 * SECTOR));
        tree.cutBack(placeholder, 2 * SECTOR);

        assertThat(placeholder.len).isEqualTo(2 * SECTOR);
        assertThat(tree.firstEndingAfter(5 * SECTOR)).isEqualTo(1);
        assertThat(tree.firstEndingAfter(6 * SECTOR)).isEqualTo(2);
    }

    /**
     * {@link KeySubtree#load} leaves what inserting the same keys one by one in log order leaves: the same keys in the
     * same order with the same ranges, data and flags, the same keys dropped, and the same searches afterwards. Half
     * the seeds load keys that never overlap (the one-pass path), the others keys that may overlap, unaligned keys or
     * keys of two stretches (the insert path); some load into a subtree that already holds keys or placeholders.
     */
    @Test
    void loadLeavesWhatLogOrderInsertsLeave() {
        for (long seed = 1; seed <= 400; seed++) {
            SplittableRandom random = new SplittableRandom(seed);
            String where = "seed=" + seed;
            long stretch = random.nextInt(4) * KeyTree.SUBTREE_SIZE;
            KeySubtree loaded = new KeySubtree();
            KeySubtree inserted = new KeySubtree();
            if (random.nextInt(8) == 0) {
                CacheKey before = dirty(stretch + random.nextInt(64) * SECTOR, SECTOR);
                loaded.insert(before);
                inserted.insert(copyOf(before));
            }
            if (random.nextInt(8) == 0) {
                long off = stretch + (KeyTree.SUBTREE_SIZE - 8 * SECTOR);
                loaded.insertPlaceholder(CacheKey.placeholder(off, 8 * SECTOR));
                inserted.insertPlaceholder(CacheKey.placeholder(off, 8 * SECTOR));
            }
            CacheKey[] logOrder = seed % 2 == 0 ? disjointKeys(random, stretch) : overlappingKeys(random, stretch);
            CacheKey[] copies = new CacheKey[logOrder.length];
            for (int i = 0; i < logOrder.length; i++) {
                copies[i] = copyOf(logOrder[i]);
                inserted.insert(copies[i]);
            }
            loaded.load(logOrder, logOrder.length);

            assertSameIndex(loaded, inserted, where);
            for (int i = 0; i < logOrder.length; i++) {
                assertThat(describe(logOrder[i])).as(where + " key " + i).isEqualTo(describe(copies[i]));
            }
            for (long off = stretch - SECTOR; off <= stretch + KeyTree.SUBTREE_SIZE; off += 97 * SECTOR / 2) {
                assertThat(loaded.firstEndingAfter(off)).as(where + " firstEndingAfter(" + off + ")")
                        .isEqualTo(inserted.firstEndingAfter(off));
            }
            CacheKey next = dirty(stretch + random.nextInt(8000) * SECTOR, (1 + random.nextInt(64)) * SECTOR);
            loaded.insert(next);
            inserted.insert(copyOf(next));
            assertSameIndex(loaded, inserted, where + " after one more insert");
        }
    }

    @Test
    void loadRejectsEmptyKeysAsInsertDoes() {
        KeySubtree tree = new KeySubtree();
        CacheKey[] keys = {dirty(0, SECTOR), CacheKey.placeholder(4 * SECTOR, SECTOR)};
        assertThatThrownBy(() -> tree.load(keys, keys.length)).isInstanceOf(IllegalArgumentException.class);
    }

    /** 1 to 500 keys of one stretch in random order, none overlapping another, many touching a neighbour. */
    private CacheKey[] disjointKeys(SplittableRandom random, long stretch) {
        int slots = (int) (KeyTree.SUBTREE_SIZE / SECTOR / 16);
        int n = 1 + random.nextInt(500);
        int[] order = random.ints(0, slots).distinct().limit(n).toArray();
        CacheKey[] keys = new CacheKey[n];
        for (int i = 0; i < n; i++) {
            int slotEnd = order[i] * 16 + 16;
            int start = order[i] * 16 + (random.nextBoolean() ? 0 : random.nextInt(16));
            int end = random.nextBoolean() ? slotEnd : start + 1 + random.nextInt(slotEnd - start);
            keys[i] = withFlags(random, dirty(stretch + (long) start * SECTOR, (end - start) * SECTOR));
        }
        return keys;
    }

    /** 1 to 300 keys that may overlap; now and then one unaligned or in the next stretch. */
    private CacheKey[] overlappingKeys(SplittableRandom random, long stretch) {
        int n = 1 + random.nextInt(300);
        int span = random.nextBoolean() ? 512 : 8192;
        CacheKey[] keys = new CacheKey[n];
        for (int i = 0; i < n; i++) {
            int start = random.nextInt(span - 1);
            int len = 1 + random.nextInt(Math.min(64, span - start));
            long off = stretch + (long) start * SECTOR;
            long bytes = (long) len * SECTOR;
            int dice = random.nextInt(100);
            if (dice == 0) {
                off += 8;
            } else if (dice == 1) {
                off += KeyTree.SUBTREE_SIZE;
            }
            keys[i] = withFlags(random, dirty(off, (int) bytes));
        }
        return keys;
    }

    private static CacheKey withFlags(SplittableRandom random, CacheKey key) {
        if (random.nextInt(4) == 0) {
            key.flags |= CacheKey.FLAG_CLEAN;
        }
        key.segOff = random.nextInt(1 << 20) * SECTOR;
        return key;
    }

    private static CacheKey copyOf(CacheKey key) {
        CacheKey copy = new CacheKey(key.off, key.len, key.flags);
        copy.place(key.seg, key.segOff, key.segGen);
        return copy;
    }

    /** Everything about a key that the index decides: range, data, flags (in-tree included). */
    private static String describe(CacheKey key) {
        return key.off + "+" + key.len + " flags=" + key.flags + " seg=" + (key.seg == null ? "-" : key.seg.id())
                + " seg_off=" + key.segOff + " gen=" + key.segGen;
    }

    private static void assertSameIndex(KeySubtree actual, KeySubtree expected, String where) {
        String[] want = new String[expected.size()];
        for (int i = 0; i < want.length; i++) {
            want[i] = describe(expected.keyAt(i));
        }
        String[] got = new String[actual.size()];
        for (int i = 0; i < got.length; i++) {
            got[i] = describe(actual.keyAt(i));
        }
        assertThat(got).as(where).containsExactly(want);
    }

    private void randomInserts(long seed, long baseSector) {
        int sectors = 256;
        SplittableRandom random = new SplittableRandom(seed);
        KeySubtree tree = new KeySubtree();
        Object[] model = new Object[sectors];
        Map<CacheKey, Integer> placeholders = new IdentityHashMap<>();
        for (int step = 0; step < 2000; step++) {
            int start = random.nextInt(sectors);
            int len = 1 + random.nextInt(Math.min(32, sectors - start));
            if (step % 100 == 99) {
                removeDataOfSegments(tree, model, step % 3, baseSector, start, start + len);
            } else if (random.nextInt(4) == 0) {
                insertPlaceholderIntoGap(tree, model, placeholders, baseSector, start, len);
            } else {
                CacheKey key = dirty((baseSector + start) * SECTOR, len * SECTOR);
                tree.insert(key);
                dropPlaceholderTails(model, start, start + len);
                for (int s = start; s < start + len; s++) {
                    model[s] = key.seg.id() + ":" + (s - start);
                }
            }
            assertMatches(tree, model, placeholders, baseSector, "seed=" + seed + " step=" + step);
        }
    }

    /**
     * What the key cleaner does: drop every data key overlapping sectors {@code [from, to)} whose segment id is
     * {@code residue} mod 3, and no other.
     */
    private static void removeDataOfSegments(KeySubtree tree, Object[] model, int residue, long baseSector, int from,
                                             int to) {
        long off = (baseSector + from) * SECTOR;
        long end = (baseSector + to) * SECTOR;
        List<CacheKey> doomed = new ArrayList<>();
        for (int i = 0; i < tree.size(); i++) {
            CacheKey key = tree.keyAt(i);
            if (key.off < end && key.end() > off && !key.isEmpty() && key.seg.id() % 3 == residue) {
                doomed.add(key);
            }
        }
        int removed = tree.removeIf(off, end, key -> !key.isEmpty() && key.seg.id() % 3 == residue);
        assertThat(removed).isEqualTo(doomed.size());
        for (CacheKey key : doomed) {
            assertThat(key.inTree()).isFalse();
            for (long s = key.off / SECTOR - baseSector; s < key.end() / SECTOR - baseSector; s++) {
                model[(int) s] = null;
            }
        }
    }

    private static void insertPlaceholderIntoGap(KeySubtree tree, Object[] model, Map<CacheKey, Integer> ids,
                                                 long baseSector, int start, int len) {
        int end = start;
        while (end < start + len && model[end] == null) {
            end++;
        }
        if (end == start) {
            return;
        }
        CacheKey placeholder = CacheKey.placeholder((baseSector + start) * SECTOR, (end - start) * SECTOR);
        tree.insertPlaceholder(placeholder);
        int id = ids.size();
        ids.put(placeholder, id);
        for (int s = start; s < end; s++) {
            model[s] = "p" + id;
        }
    }

    /** dm-pcache's EMPTY rules: the part of a placeholder past the end of a new key that overlaps it is dropped. */
    private static void dropPlaceholderTails(Object[] model, int start, int end) {
        for (int s = start; s < end; s++) {
            if (model[s] instanceof String owner && owner.startsWith("p")) {
                for (int t = end; t < model.length && owner.equals(model[t]); t++) {
                    model[t] = null;
                }
            }
        }
    }

    private static void assertMatches(KeySubtree tree, Object[] model, Map<CacheKey, Integer> ids, long baseSector,
                                      String where) {
        Object[] actual = new Object[model.length];
        long previousEnd = 0;
        for (int i = 0; i < tree.size(); i++) {
            CacheKey key = tree.keyAt(i);
            assertThat(key.off).as(where + " order").isGreaterThanOrEqualTo(previousEnd);
            assertThat(key.len).as(where + " length").isPositive();
            assertThat(key.inTree()).as(where).isTrue();
            previousEnd = key.end();
            for (long off = key.off; off < key.end(); off += SECTOR) {
                int s = (int) (off / SECTOR - baseSector);
                actual[s] = key.isEmpty() ? "p" + ids.get(key)
                        : key.seg.id() + ":" + (key.segOff + (off - key.off)) / SECTOR;
            }
        }
        assertThat(actual).as(where).containsExactly(model);
        for (long off = (baseSector - 1) * SECTOR; off <= (baseSector + model.length + 1) * SECTOR; off += SECTOR / 2) {
            int expected = 0;
            while (expected < tree.size() && tree.keyAt(expected).end() <= off) {
                expected++;
            }
            assertThat(tree.firstEndingAfter(off)).as(where + " firstEndingAfter(" + off + ")").isEqualTo(expected);
        }
    }
}
