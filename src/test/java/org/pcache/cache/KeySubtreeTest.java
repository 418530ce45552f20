package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.IdentityHashMap;
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
                removeDataOfSegments(tree, model, step % 3);
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

    /** What the key cleaner does: drop every data key whose segment id is {@code residue} mod 3. */
    private static void removeDataOfSegments(KeySubtree tree, Object[] model, int residue) {
        tree.removeIf(key -> !key.isEmpty() && key.seg.id() % 3 == residue);
        for (int s = 0; s < model.length; s++) {
            if (model[s] instanceof String owner && !owner.startsWith("p")
                    && Integer.parseInt(owner.substring(0, owner.indexOf(':'))) % 3 == residue) {
                model[s] = null;
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
