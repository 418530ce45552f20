package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CrashSimPmemRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Power cuts at every persistence point of seeded random workloads, just before and just after each drain. After each cut the cache is reopened (replay) and
 * every sector is checked: a write acknowledged before an acknowledged flush, or written with FUA, reads back (or a
 * later write of the same sector does); any other sector reads back its original content or one of the values written
 * there; nothing reads back garbage.
 */
class PcacheCrashTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final int OPS = 40;

    /** One step of a workload. */
    private record Op(Kind kind, long off, int len, long id) {
        boolean covers(long sectorOffset) {
            return kind != Kind.FLUSH && sectorOffset >= off && sectorOffset < off + len;
        }

        /** The value this op leaves in a sector it covers. */
        long value() {
            return kind == Kind.ZEROES || kind == Kind.FUA_ZEROES || kind == Kind.DISCARD ? SectorPattern.ZERO : id;
        }
    }

    /** ZEROES, FUA_ZEROES and DISCARD are data-less records; a discarded range reads as zeroes. */
    private enum Kind { WRITE, FUA_WRITE, ZEROES, FUA_ZEROES, DISCARD, FLUSH }

    static LongStream seeds() {
        return SoakSeeds.or(LongStream.rangeClosed(1, 16).toArray());
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void everyPowerCutRecoversWhatWasAcknowledged(long seed) throws IOException {
        List<Op> workload = workload(seed);
        long[] drains = countDrains(workload);
        assertThat(drains[1] - drains[0]).as("seed=" + seed + " persistence points").isGreaterThan(5);
        for (long point = drains[0] + 1; point <= drains[1]; point++) {
            crashAt(seed, workload, point, Cut.AFTER_DRAIN);
            crashAt(seed, workload, point, Cut.BEFORE_DRAIN);
        }
    }

    /** Drains at the start and at the end of the workload, from a run without a cut. */
    private static long[] countDrains(List<Op> workload) throws IOException {
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        try (CacheHarness harness = CacheHarness.on(region, new MemoryEngine(BACKING_SIZE),
                CacheHarness.quietOptions())) {
            long start = region.drainCount();
            run(harness, region, workload);
            return new long[] {start, region.drainCount()};
        }
    }

    /** Where the power fails: just after a drain completed, or just as it is called (what it would persist at risk). */
    private enum Cut { AFTER_DRAIN, BEFORE_DRAIN }

    private static void crashAt(long seed, List<Op> workload, long point, Cut cut) throws IOException {
        String where = "seed=" + seed + " power cut " + cut + " " + point;
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        try (CacheHarness harness = CacheHarness.on(region, new MemoryEngine(BACKING_SIZE),
                CacheHarness.quietOptions())) {
            if (cut == Cut.AFTER_DRAIN) {
                region.freezeAtDrain(point);
            } else {
                region.freezeBeforeDrain(point);
            }
            boolean[] acknowledgedBeforeCut = run(harness, region, workload);
            harness.cache.close();
            region.powerCut(seed * 1_000_003 + point);
            harness.openAgain();
            verify(harness, workload, acknowledgedBeforeCut, where);
        }
    }

    /** Runs the workload; returns, per op, whether it completed before the region froze. */
    private static boolean[] run(CacheHarness harness, CrashSimPmemRegion region, List<Op> workload)
            throws IOException {
        boolean[] acknowledged = new boolean[workload.size()];
        for (int i = 0; i < workload.size(); i++) {
            Op op = workload.get(i);
            switch (op.kind()) {
                case WRITE -> harness.writePattern(op.off(), op.len(), op.id(), Durability.BUFFERED);
                case FUA_WRITE -> harness.writePattern(op.off(), op.len(), op.id(), Durability.FUA);
                case ZEROES -> CacheHarness.await(harness.cache.writeZeroesAsync(op.off(), op.len(),
                        Durability.BUFFERED));
                case FUA_ZEROES -> CacheHarness.await(harness.cache.writeZeroesAsync(op.off(), op.len(),
                        Durability.FUA));
                case DISCARD -> CacheHarness.await(harness.cache.discardAsync(op.off(), op.len()));
                case FLUSH -> CacheHarness.await(harness.cache.flushAsync());
            }
            acknowledged[i] = !region.frozen();
        }
        return acknowledged;
    }

    /** Reads back every sector the workload touched, one op's range at a time. */
    private static void verify(CacheHarness harness, List<Op> workload, boolean[] acknowledged, String where)
            throws IOException {
        boolean[] durable = durableWrites(workload, acknowledged);
        for (Op op : workload) {
            if (op.kind() == Kind.FLUSH) {
                continue;
            }
            long[] ids = harness.readIds(op.off(), op.len());
            for (int sector = 0; sector < ids.length; sector++) {
                long sectorOffset = op.off() + (long) sector * SECTOR;
                Set<Long> allowed = allowedValues(workload, durable, sectorOffset);
                assertThat(allowed).as(where + " sector at " + sectorOffset + " holds " + ids[sector])
                        .contains(ids[sector]);
            }
        }
    }

    /** Writes that must survive: acknowledged FUA writes, and writes acknowledged before an acknowledged flush. */
    private static boolean[] durableWrites(List<Op> workload, boolean[] acknowledged) {
        boolean[] durable = new boolean[workload.size()];
        boolean flushedLater = false;
        for (int i = workload.size() - 1; i >= 0; i--) {
            Op op = workload.get(i);
            if (op.kind() == Kind.FLUSH) {
                flushedLater |= acknowledged[i];
            } else {
                durable[i] = acknowledged[i] && (flushedLater || op.kind() == Kind.FUA_WRITE
                        || op.kind() == Kind.FUA_ZEROES);
            }
        }
        return durable;
    }

    /** The last durable write of the sector and everything written there after it; the original if none. */
    private static Set<Long> allowedValues(List<Op> workload, boolean[] durable, long sectorOffset) {
        Set<Long> allowed = new HashSet<>();
        allowed.add(SectorPattern.ZERO);
        for (int i = 0; i < workload.size(); i++) {
            Op op = workload.get(i);
            if (op.covers(sectorOffset)) {
                if (durable[i]) {
                    allowed.clear();
                }
                allowed.add(op.value());
            }
        }
        return allowed;
    }

    /**
     * A seeded workload over a small device, so writes overlap often: plain and FUA writes of 512 B to 128 KiB (some
     * crossing a 4 MiB stretch boundary), plain and FUA write-zeroes and discards (records without data: the power
     * cuts fall across them and across the cache_info write that marks the first one), and flushes.
     */
    private static List<Op> workload(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Op> ops = new ArrayList<>();
        for (int i = 0; i < OPS; i++) {
            int dice = random.nextInt(100);
            Kind kind = dice < 55 ? Kind.WRITE : dice < 67 ? Kind.FUA_WRITE : dice < 72 ? Kind.ZEROES
                    : dice < 75 ? Kind.FUA_ZEROES : dice < 81 ? Kind.DISCARD : Kind.FLUSH;
            int len = (1 + random.nextInt(random.nextBoolean() ? 16 : 256)) * SECTOR;
            long off = random.nextInt(4) == 0
                    ? (1 + random.nextLong(BACKING_SIZE >> KeyTree.SUBTREE_SHIFT - 1)) * KeyTree.SUBTREE_SIZE - len / 2
                    : random.nextLong((BACKING_SIZE - len) / SECTOR) * SECTOR;
            off = Math.max(0, Math.min(off / SECTOR * SECTOR, BACKING_SIZE - len));
            ops.add(new Op(kind, off, len, i + 1));
        }
        return ops;
    }
}
