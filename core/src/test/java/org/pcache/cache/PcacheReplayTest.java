package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.KsetOnMedia;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Replay rebuilds exactly what the cache held: after a clean close the positions, the segment usage and every byte
 * come back, whether the log was written back or is still dirty; a log that filled a whole segment and chained the
 * next one replays across the LAST kset; and a power cut at any persistence point of chaining a new log segment
 * recovers every acknowledged FUA write and keeps working.
 */
class PcacheReplayTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    /** A FUA write of one key is a kset of 64 bytes. */
    private static final int ONE_KEY_KSET = KsetOnMedia.size(1);
    /** The chaining workload's device: 1 MiB, small enough to read back whole after every cut. */
    private static final long CHAIN_BACKING_SIZE = 1L << 20;
    /** The write id of the data an outdated kset in every free segment points at. */
    private static final long STALE_ID = 666;
    /** FUA writes before the one that must chain a new log segment. */
    private static final int FILL_WRITES = 4;
    /** Where key_tail is moved so that {@link #FILL_WRITES} one-key ksets fit and the next one does not. */
    private static final CachePos NEAR_END = new CachePos(0,
            CacheDeviceLayout.SEGMENT_DATA_SIZE - (FILL_WRITES * ONE_KEY_KSET + ONE_KEY_KSET + 16));

    /** One write of the chaining workload. */
    private record Op(long off, int len, long id, Durability durability) {
        boolean covers(long sector) {
            return sector >= off && sector < off + len;
        }
    }

    /** Where the power fails relative to drain k: just after it completed, or as it is called. */
    private enum Cut { AFTER_DRAIN, BEFORE_DRAIN }

    /** Whether the log is written back before the reopen, or still all dirty (writes to the backing device fail). */
    enum Writeback { DRAINED, DIRTY }

    @ParameterizedTest(name = "seed={0} {1}")
    @CsvSource({"3, DRAINED", "17, DRAINED", "3, DIRTY", "17, DIRTY"})
    void cleanReopenRestoresPositionsSegmentsAndEveryByte(long seed, Writeback writeback) throws Exception {
        SplittableRandom random = new SplittableRandom(seed);
        long[] model = new long[(int) (BACKING_SIZE / SECTOR)];
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE));
        if (writeback == Writeback.DIRTY) {
            backing.failAll(EngineOp.WRITE);
        }
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), backing,
                CacheHarness.quietOptions())) {
            for (long id = 1; id <= 400; id++) {
                int len = (1 + random.nextInt(random.nextBoolean() ? 8 : 512)) * SECTOR;
                long off = random.nextLong((BACKING_SIZE - len) / SECTOR) * SECTOR;
                int dice = random.nextInt(10);
                if (dice < 6) {
                    harness.writePattern(off, len, id, dice == 0 ? Durability.FUA : Durability.BUFFERED);
                    Arrays.fill(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR), id);
                } else if (dice < 7) {
                    CacheHarness.await(harness.cache.writeZeroesAsync(off, len, Durability.BUFFERED));
                    Arrays.fill(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR), SectorPattern.ZERO);
                } else {
                    harness.readIds(off, len);
                }
            }
            harness.awaitMissFills(); // their keys go into the flush's ksets, not the close's
            if (writeback == Writeback.DRAINED) {
                harness.cache.drain();
            } else {
                CacheHarness.await(harness.cache.flushAsync());
            }
            CacheStatus before = harness.cache.status();

            harness.reopen();

            CacheStatus after = harness.cache.status();
            String where = "seed=" + seed + " " + writeback;
            assertThat(before.dirtyTail().equals(before.keyHead())).as(where + " written back")
                    .isEqualTo(writeback == Writeback.DRAINED);
            assertThat(after.keyHead()).as(where + " key_head").isEqualTo(before.keyHead());
            assertThat(after.dirtyTail()).as(where + " dirty_tail").isEqualTo(before.dirtyTail());
            assertThat(after.keyTail()).as(where + " key_tail").isEqualTo(before.keyTail());
            assertThat(after.segsUsed()).as(where + " segs_used").isEqualTo(before.segsUsed());
            assertThat(after.statusLine()).as(where + " status line").isEqualTo(before.statusLine());
            assertModel(harness, model, where);
        }
    }

    @Test
    void logFillingAWholeSegmentChainsTheNextAndReplaysAcrossIt() throws IOException {
        long[] model = new long[(int) (BACKING_SIZE / SECTOR)];
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            int logSeg = harness.cache.status().keyHead().seg();
            long id = 0;
            while (harness.cache.status().keyHead().seg() == logSeg) {
                long off = (id * 7919 * SECTOR) % BACKING_SIZE;
                harness.writePattern(off, SECTOR, ++id, Durability.FUA);
                model[(int) (off / SECTOR)] = id;
            }
            long chainedAt = id;
            for (int i = 0; i < 100; i++) {
                long off = (id * 7919 * SECTOR) % BACKING_SIZE;
                harness.writePattern(off, SECTOR, ++id, Durability.FUA);
                model[(int) (off / SECTOR)] = id;
            }
            CachePos head = harness.cache.status().keyHead();
            assertThat(head).as("key_head after " + id + " FUA writes, chained at " + chainedAt)
                    .isEqualTo(new CachePos(head.seg(), 101 * ONE_KEY_KSET));
            assertThat(chainedAt).as("one-key ksets in a full log segment")
                    .isEqualTo((CacheDeviceLayout.SEGMENT_DATA_SIZE - KsetOnMedia.HEADER_SIZE) / ONE_KEY_KSET + 1);

            harness.reopen();

            assertThat(harness.cache.status().keyHead()).isEqualTo(head);
            assertModel(harness, model, "after replaying a chained log");
        }
    }

    private static void assertModel(CacheHarness harness, long[] model, String where) throws IOException {
        int chunk = 4 << 20;
        for (long off = 0; off < BACKING_SIZE; off += chunk) {
            assertThat(harness.readIds(off, chunk)).as(where + " read at " + off)
                    .containsExactly(Arrays.copyOfRange(model, (int) (off / SECTOR), (int) ((off + chunk) / SECTOR)));
        }
    }

    @Test
    void powerCutAtEveryPersistencePointOfChainingALogSegmentRecovers() throws IOException {
        long seed = 99;
        List<Op> workload = chainingWorkload(seed);
        CrashSimPmemRegion probe = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        long firstDrain;
        long lastDrain;
        try (CacheHarness harness = nearEndOfLogSegment(probe)) {
            firstDrain = probe.drainCount();
            run(harness, probe, workload);
            lastDrain = probe.drainCount();
            assertThat(harness.cache.status().keyHead().seg()).as("the workload chained a new log segment")
                    .isNotZero();
        }
        assertThat(lastDrain - firstDrain).as("persistence points").isGreaterThan(2L * workload.size());
        int cuts = 0;
        for (long point = firstDrain + 1; point <= lastDrain; point++) {
            for (Cut cut : Cut.values()) {
                cutAndRecover(seed, workload, point, cut);
                cuts++;
            }
        }
        assertThat(cuts).as("power cuts").isGreaterThan(20);
    }

    private static void cutAndRecover(long seed, List<Op> workload, long point, Cut cut) throws IOException {
        String where = "seed=" + seed + " power cut " + cut + " " + point;
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        try (CacheHarness harness = nearEndOfLogSegment(region)) {
            if (cut == Cut.AFTER_DRAIN) {
                region.freezeAtDrain(point);
            } else {
                region.freezeBeforeDrain(point);
            }
            boolean[] acknowledged = run(harness, region, workload);
            harness.cache.close();
            region.powerCut(seed * 31 + point);
            harness.openAgain();

            long[] recovered = harness.readIds(0, (int) CHAIN_BACKING_SIZE);
            for (int sector = 0; sector < recovered.length; sector++) {
                long at = (long) sector * SECTOR;
                assertThat(allowedValues(workload, acknowledged, at)).as(where + " sector at " + at + " holds "
                        + recovered[sector]).contains(recovered[sector]);
            }
            for (int i = 0; i < FILL_WRITES + 4; i++) {
                long off = (64L << 10) * i + 7 * SECTOR;
                long id = 1_000 + i;
                harness.writePattern(off, 4096, id, Durability.FUA);
                Arrays.fill(recovered, (int) (off / SECTOR), (int) ((off + 4096) / SECTOR), id);
            }
            harness.reopen();
            assertThat(harness.readIds(0, (int) CHAIN_BACKING_SIZE)).as(where + " writes after the recovery, reopened")
                    .containsExactly(recovered);
        }
    }

    /**
     * A fresh cache whose log starts {@link #NEAR_END}, as after GC reclaimed the front of log segment 0, and whose
     * free segments start with an outdated kset (as after an earlier use as log segments) holding a key to data of
     * write {@link #STALE_ID}: a chained segment must never let it back into the log.
     */
    private static CacheHarness nearEndOfLogSegment(CrashSimPmemRegion region) throws IOException {
        CacheHarness harness = CacheHarness.on(region, new MemoryEngine(CHAIN_BACKING_SIZE),
                CacheHarness.quietOptions());
        int segments = harness.cache.status().cacheSegs();
        harness.cache.close();
        KsetLogEditor log = new KsetLogEditor(region);
        MemorySegment staleData = MemorySegment.ofArray(new byte[4096]);
        SectorPattern.fill(staleData, 0, STALE_ID);
        long staleDataAt = KsetLogEditor.dataOffset(segments - 1) + (8 << 20);
        region.write(staleDataAt, staleData, 0, staleData.byteSize());
        region.persist(staleDataAt, staleData.byteSize());
        KsetLogEditor.Key staleKey = new KsetLogEditor.Key(0, 4096, 0, segments - 1, 8 << 20, 0, 0);
        for (int seg = 1; seg < segments - 1; seg++) {
            log.writeKset(new CachePos(seg, 0), 1, staleKey, ONE_KEY_KSET);
        }
        log.dirtyTail(NEAR_END);
        log.keyTail(NEAR_END);
        harness.openAgain();
        assertThat(harness.cache.status().keyHead()).isEqualTo(NEAR_END);
        return harness;
    }

    /** FUA writes, then a buffered one and a flush, all to seeded offsets. */
    private static List<Op> chainingWorkload(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Op> ops = new ArrayList<>();
        for (long id = 1; id <= FILL_WRITES + 5; id++) {
            int len = (1 + random.nextInt(32)) * SECTOR;
            long off = random.nextLong((CHAIN_BACKING_SIZE - len) / SECTOR) * SECTOR;
            ops.add(new Op(off, len, id, id == FILL_WRITES + 4 ? Durability.BUFFERED : Durability.FUA));
        }
        return ops;
    }

    /** Runs the workload, flushing after the buffered write; returns, per op, whether it completed before the cut. */
    private static boolean[] run(CacheHarness harness, CrashSimPmemRegion region, List<Op> workload)
            throws IOException {
        boolean[] acknowledged = new boolean[workload.size()];
        for (int i = 0; i < workload.size(); i++) {
            Op op = workload.get(i);
            harness.writePattern(op.off(), op.len(), op.id(), op.durability());
            if (op.durability() == Durability.BUFFERED) {
                CacheHarness.await(harness.cache.flushAsync());
            }
            acknowledged[i] = !region.frozen();
        }
        return acknowledged;
    }

    /** The last acknowledged write of the sector and everything written there after it; zero if none. */
    private static Set<Long> allowedValues(List<Op> workload, boolean[] acknowledged, long sector) {
        Set<Long> allowed = new HashSet<>();
        allowed.add(SectorPattern.ZERO);
        for (int i = 0; i < workload.size(); i++) {
            Op op = workload.get(i);
            if (op.covers(sector)) {
                if (acknowledged[i]) {
                    allowed.clear();
                }
                allowed.add(op.id());
            }
        }
        return allowed;
    }
}
