package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.GateEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * The read-miss path against a backing device that fails or holds its reads: a failed miss reports the backing
 * device's error and leaves no EMPTY placeholder behind; writes go on being absorbed while the backing device fails;
 * a write over a miss in flight is never shadowed by the data that miss brings back, before or after a reopen.
 */
class PcacheMissPathTest {

    private static final long BACKING_SIZE = 16L << 20;
    /** The id of the pattern every backing sector holds before the test writes anything. */
    private static final long BACKING_ID = 7_777;
    private static final long MISS_OFF = 1L << 20;
    private static final int MISS_LEN = 64 << 10;
    private static final int KIB = 1024;

    @Test
    void failedMissReportsTheBackingErrorAndLeavesNoPlaceholder() throws IOException {
        FaultEngine fault = new FaultEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), fault,
                CacheHarness.quietOptions())) {
            fault.failAll(EngineOp.READ);

            Throwable error = catchThrowable(() -> harness.readIds(MISS_OFF, MISS_LEN));

            assertThat(error).isInstanceOf(BackingIoException.class);
            assertThat(((BackingIoException) error).reason()).isEqualTo(BackingIoException.Reason.IO_ERROR);
            fault.clear();
            assertThat(harness.readIds(MISS_OFF, MISS_LEN)).as("read after the disk came back")
                    .containsOnly(BACKING_ID);
            harness.awaitStatus("the retry filled the cache", status -> status.counters().missFills() == 1);
            long backingReads = fault.seen(EngineOp.READ);
            long hits = harness.cache.status().counters().readHitsFull();
            assertThat(harness.readIds(MISS_OFF, MISS_LEN)).containsOnly(BACKING_ID);
            assertThat(harness.cache.status().counters().readHitsFull()).as("third read hits").isEqualTo(hits + 1);
            assertThat(fault.seen(EngineOp.READ)).as("backing reads of the third read").isEqualTo(backingReads);
        }
    }

    @Test
    void readOverAHitAndAFailingGapFailsAndSucceedsOnceTheDiskIsBack() throws IOException {
        FaultEngine fault = new FaultEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), fault,
                CacheHarness.quietOptions())) {
            harness.writePattern(MISS_OFF + 16 * KIB, 16 * KIB, 1, Durability.BUFFERED);
            fault.failAll(EngineOp.READ);

            assertThat(catchThrowable(() -> harness.readIds(MISS_OFF, MISS_LEN)))
                    .isInstanceOf(BackingIoException.class);

            fault.clear();
            long[] ids = harness.readIds(MISS_OFF, MISS_LEN);
            for (int sector = 0; sector < ids.length; sector++) {
                long at = (long) sector * SectorPattern.SECTOR;
                long expected = at >= 16 * KIB && at < 32 * KIB ? 1 : BACKING_ID;
                assertThat(ids[sector]).as("sector at +" + at).isEqualTo(expected);
            }
            long hits = harness.cache.status().counters().readHitsFull();
            harness.readIds(MISS_OFF, MISS_LEN);
            assertThat(harness.cache.status().counters().readHitsFull()).isEqualTo(hits + 1);
        }
    }

    @Test
    void writesAreAbsorbedWhileTheBackingDeviceFails() throws IOException {
        long seed = 20_260_611;
        SplittableRandom random = new SplittableRandom(seed);
        FaultEngine fault = new FaultEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), fault,
                CacheHarness.quietOptions())) {
            fault.failAll(EngineOp.READ).failAll(EngineOp.WRITE).failAll(EngineOp.FLUSH);
            long[] model = new long[(int) (BACKING_SIZE / SectorPattern.SECTOR)];
            for (long id = 1; id <= 300; id++) {
                int len = (1 + random.nextInt(64)) * SectorPattern.SECTOR;
                long off = random.nextLong((BACKING_SIZE - len) / SectorPattern.SECTOR) * SectorPattern.SECTOR;
                harness.writePattern(off, len, id, id % 5 == 0 ? Durability.FUA : Durability.BUFFERED);
                Arrays.fill(model, (int) (off / SectorPattern.SECTOR),
                        (int) ((off + len) / SectorPattern.SECTOR), id);
                if (id % 50 == 0) {
                    CacheHarness.await(harness.cache.flushAsync());
                }
            }
            CacheHarness.await(harness.cache.flushAsync());
            harness.reopen();
            fault.clear();
            for (long off = 0; off < BACKING_SIZE; off += 1 << 20) {
                long[] ids = harness.readIds(off, 1 << 20);
                for (int sector = 0; sector < ids.length; sector++) {
                    long expected = model[(int) (off / SectorPattern.SECTOR) + sector];
                    assertThat(ids[sector]).as("seed=" + seed + " sector at " + (off + sector * 512L))
                            .isEqualTo(expected == 0 ? BACKING_ID : expected);
                }
            }
        }
    }

    /** Where a write lands relative to the range [1 MiB, 1 MiB + 64 KiB) of a miss in flight. */
    enum Overlap {
        HEAD(MISS_OFF - 4 * KIB, 12 * KIB),
        TAIL(MISS_OFF + 56 * KIB, 16 * KIB),
        MIDDLE(MISS_OFF + 16 * KIB, 8 * KIB),
        WHOLE(MISS_OFF - 4 * KIB, 72 * KIB),
        EXACT(MISS_OFF, MISS_LEN);

        final long off;
        final int len;

        Overlap(long off, int len) {
            this.off = off;
            this.len = len;
        }

        boolean covers(long at) {
            return at >= off && at < off + len;
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(Overlap.class)
    void writeOverAMissInFlightIsNeverShadowedByTheMissData(Overlap overlap) throws Exception {
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), 1);
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), gate,
                CacheHarness.quietOptions())) {
            MemorySegment firstRead = MemorySegment.ofArray(new byte[MISS_LEN]);
            CompletableFuture<Void> miss = harness.cache.readAsync(MISS_OFF, firstRead);
            assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("miss read reached the backing device").isTrue();

            harness.writePattern(overlap.off, overlap.len, 5, Durability.BUFFERED);
            gate.open();
            CacheHarness.await(miss);

            for (long at = 0; at < MISS_LEN; at += SectorPattern.SECTOR) {
                assertThat(SectorPattern.idOf(firstRead, at, MISS_OFF + at)).as("racing read at +" + at)
                        .isIn(BACKING_ID, overlap.covers(MISS_OFF + at) ? 5L : BACKING_ID);
            }
            long from = MISS_OFF - 8 * KIB;
            int length = MISS_LEN + 24 * KIB;
            assertRange(harness, from, length, overlap, "after the fill");
            CacheHarness.await(harness.cache.flushAsync());
            harness.reopen();
            assertRange(harness, from, length, overlap, "after reopen");
        }
    }

    @Test
    void failedMissUnderASecondReadersRereadLeavesNoPlaceholder() throws Exception {
        FaultEngine fault = new FaultEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        GateEngine gate = new GateEngine(fault, 3);
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), gate,
                CacheHarness.quietOptions())) {
            CompletableFuture<Void> first = harness.cache.readAsync(MISS_OFF,
                    MemorySegment.ofArray(new byte[MISS_LEN]));
            MemorySegment secondBuf = MemorySegment.ofArray(new byte[MISS_LEN]);
            CompletableFuture<Void> second = harness.cache.readAsync(MISS_OFF + MISS_LEN / 2, secondBuf);
            assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("three backing reads held").isTrue();
            assertThat(gate.held()).as("first miss, second's reread behind the placeholder, second's miss")
                    .isEqualTo(3);
            fault.failNth(EngineOp.READ, 1);
            gate.open();

            assertThat(catchThrowable(() -> CacheHarness.await(first))).isInstanceOf(BackingIoException.class);
            CacheHarness.await(second);
            for (long at = 0; at < MISS_LEN; at += SectorPattern.SECTOR) {
                assertThat(SectorPattern.idOf(secondBuf, at, MISS_OFF + MISS_LEN / 2 + at)).isEqualTo(BACKING_ID);
            }
            assertThat(harness.readIds(MISS_OFF, MISS_LEN + MISS_LEN / 2)).containsOnly(BACKING_ID);
            long hits = harness.cache.status().counters().readHitsFull();
            assertThat(harness.readIds(MISS_OFF, MISS_LEN + MISS_LEN / 2)).containsOnly(BACKING_ID);
            assertThat(harness.cache.status().counters().readHitsFull()).as("the failed range was filled again")
                    .isEqualTo(hits + 1);
        }
    }

    private static void assertRange(CacheHarness harness, long from, int length, Overlap overlap, String when)
            throws IOException {
        long[] ids = harness.readIds(from, length);
        for (int sector = 0; sector < ids.length; sector++) {
            long at = from + (long) sector * SectorPattern.SECTOR;
            assertThat(ids[sector]).as(overlap + " " + when + ": sector at " + at)
                    .isEqualTo(overlap.covers(at) ? 5 : BACKING_ID);
        }
    }
}
