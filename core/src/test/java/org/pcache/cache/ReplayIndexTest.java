package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDevice;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Replay builds exactly the index that inserting every live key of the log one by one, in log order, builds (the way
 * replay worked before it loaded subtrees in bulk): the same keys with the same ranges, data, flags and generations in
 * every subtree, the same stale keys skipped (each still cutting the older keys of its range), and the same
 * reference count on every segment.
 *
 * <p>Each seeded log mixes subtrees whose keys overlap (random writes and read-miss fills over a small range, so later
 * keys cut, split and replace earlier ones) with subtrees whose keys never overlap (distinct 4 KiB slots written in
 * random order), and for some seeds makes one data segment's keys stale. The backing device fails every write, so
 * writeback never trims the log.
 */
class ReplayIndexTest {

    private static final long BACKING_SIZE = 8 * KeyTree.SUBTREE_SIZE;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final int OVERLAPPING_SUBTREES = 4;

    @ParameterizedTest(name = "seed={0}")
    @ValueSource(longs = {1, 2, 3, 4, 5, 6})
    void replayBuildsTheIndexThatLogOrderInsertsBuild(long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        String where = "seed=" + seed;
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(backing, CacheHarness.quietOptions())) {
            writeWorkload(harness, random);
            harness.cache.close();
            KsetLogEditor log = new KsetLogEditor(harness.region);
            if (random.nextBoolean()) {
                makeOneSegmentStale(log, random);
            }
            CacheDevice device = CacheDevice.inspect(harness.region);

            SegmentMap segments = new SegmentMap(device, ranges -> { });
            KeyTree tree = new KeyTree(BACKING_SIZE);
            Replay replay = new Replay(device, segments, tree, BACKING_SIZE, false);
            replay.run();

            SegmentMap expectedSegments = new SegmentMap(device, ranges -> { });
            KeyTree expected = new KeyTree(BACKING_SIZE);
            List<List<CacheKey>> liveKeys = insertInLogOrder(log.keys(), expectedSegments, expected);

            assertThat(overlapping(liveKeys)).as(where + " subtrees whose keys overlap")
                    .containsExactly(true, true, true, true, false, false, false, false);
            long live = 0;
            for (int i = 0; i < tree.subtreeCount(); i++) {
                assertThat(describe(tree.subtreeAt(i))).as(where + " subtree " + i)
                        .containsExactlyElementsOf(describe(expected.subtreeAt(i)));
                live += liveKeys.get(i).size();
            }
            assertThat(replay.keys()).as(where + " live keys").isEqualTo(live);
            for (int id = 0; id < segments.count(); id++) {
                assertThat(segments.segment(id).refs()).as(where + " refs of segment " + id)
                        .isEqualTo(expectedSegments.segment(id).refs());
            }
        }
    }

    /**
     * GC invalidates a segment before key_tail passes the ksets it reclaimed: a crash in between leaves the newer data
     * key stale and an older ZERO key (no segment, never stale) live. The stale key must still cut the ZERO key, or
     * replay would bring back zeroes over the data writeback already put on the backing device.
     */
    @Test
    void aStaleKeyStillCutsTheOlderZeroKeyOfItsRange() throws IOException {
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(backing, CacheHarness.quietOptions())) {
            CacheHarness.await(harness.cache.writeZeroesAsync(0, 64 << 10, Durability.BUFFERED));
            harness.writePattern(0, 64 << 10, 7, Durability.BUFFERED);
            CacheHarness.await(harness.cache.flushAsync());
            harness.cache.close();
            KsetLogEditor log = new KsetLogEditor(harness.region);
            KsetLogEditor.Key data = log.keys().stream().filter(k -> (k.flags() & CacheKey.DATALESS_FLAGS) == 0)
                    .reduce((first, second) -> second).orElseThrow();
            log.segmentGen(data.segId(), data.segGen() + 1);
            CacheDevice device = CacheDevice.inspect(harness.region);
            KeyTree tree = new KeyTree(BACKING_SIZE);
            Replay replay = new Replay(device, new SegmentMap(device, ranges -> { }), tree, BACKING_SIZE, false);
            replay.run();
            assertThat(replay.staleKeys()).isEqualTo(1);
            assertThat(tree.subtreeAt(0).size()).as("keys left over the stale key's range").isZero();
        }
    }

    /** Random writes and misses over the first 256 KiB of the low subtrees; distinct 4 KiB slots in the high ones. */
    private static void writeWorkload(CacheHarness harness, SplittableRandom random) throws IOException {
        int slotsPerSubtree = 64;
        int[] slots = random.ints(0, (8 - OVERLAPPING_SUBTREES) * slotsPerSubtree).distinct()
                .limit((8 - OVERLAPPING_SUBTREES) * slotsPerSubtree).toArray();
        int nextSlot = 0;
        for (long id = 1; id <= 1200; id++) {
            int dice = random.nextInt(10);
            if (dice < 4 && nextSlot < slots.length) {
                int slot = slots[nextSlot++];
                long subtree = OVERLAPPING_SUBTREES + slot / slotsPerSubtree;
                long off = subtree * KeyTree.SUBTREE_SIZE + (long) (slot % slotsPerSubtree) * 16 * 4096;
                harness.writePattern(off, 4096, id, Durability.BUFFERED);
                continue;
            }
            long subtree = random.nextInt(OVERLAPPING_SUBTREES);
            int len = (1 + random.nextInt(32)) * SECTOR;
            long off = subtree * KeyTree.SUBTREE_SIZE + random.nextInt((256 << 10) / SECTOR) * (long) SECTOR;
            if (dice == 9) {
                harness.readIds(off, len);
            } else {
                harness.writePattern(off, len, id, Durability.BUFFERED);
            }
        }
        CacheHarness.await(harness.cache.flushAsync());
    }

    /** Bumps the generation of the segment the log's middle key points into: its keys become stale. */
    private static void makeOneSegmentStale(KsetLogEditor log, SplittableRandom random) {
        List<KsetLogEditor.Key> keys = log.keys();
        KsetLogEditor.Key key = keys.get(random.nextInt(keys.size()));
        log.segmentGen(key.segId(), key.segGen() + 1);
    }

    /** The index as inserting each live key in log order builds it; returns the live keys per subtree. */
    private static List<List<CacheKey>> insertInLogOrder(List<KsetLogEditor.Key> records, SegmentMap segments,
                                                         KeyTree tree) {
        List<List<CacheKey>> live = new ArrayList<>();
        for (int i = 0; i < tree.subtreeCount(); i++) {
            live.add(new ArrayList<>());
        }
        for (KsetLogEditor.Key record : records) {
            CacheSegment seg = segments.segment(record.segId());
            if (record.segGen() < seg.gen()) {
                // A stale key still cuts the older keys of its range (Replay), like an INVALIDATE key.
                CacheKey cutter = CacheKey.dataless(record.off(), record.len(), CacheKey.FLAG_INVALIDATE);
                tree.subtree(cutter.off).insert(cutter);
                tree.subtree(cutter.off).remove(cutter);
                continue;
            }
            CacheKey key = new CacheKey(record.off(), record.len(), record.flags());
            key.place(seg, record.segOff(), record.segGen());
            live.get(KeyTree.subtreeIndex(key.off)).add(new CacheKey(key.off, key.len, key.flags));
            tree.subtree(key.off).insert(key);
            seg.retain();
        }
        return live;
    }

    /** Per subtree, whether any two of its live keys overlap. */
    private static List<Boolean> overlapping(List<List<CacheKey>> live) {
        List<Boolean> result = new ArrayList<>();
        for (List<CacheKey> keys : live) {
            List<CacheKey> sorted = new ArrayList<>(keys);
            sorted.sort((a, b) -> Long.compare(a.off, b.off));
            boolean overlap = false;
            for (int i = 1; i < sorted.size(); i++) {
                overlap |= sorted.get(i).off < sorted.get(i - 1).end();
            }
            result.add(overlap);
        }
        return result;
    }

    private static List<String> describe(KeySubtree subtree) {
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < subtree.size(); i++) {
            CacheKey key = subtree.keyAt(i);
            keys.add(key.off + "+" + key.len + " flags=" + key.flags + " seg=" + key.seg.id() + " seg_off="
                    + key.segOff + " gen=" + key.segGen);
        }
        return keys;
    }
}
