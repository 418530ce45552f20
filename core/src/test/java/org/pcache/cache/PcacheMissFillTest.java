package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingOp;
import org.pcache.backing.MemoryRequest;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.GateEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Miss fills run off the backing device's completion worker: a fill that is slow to store its data into the region
 * holds up neither its own reader's reply nor any other request's completion, a write that lands while a fill
 * waits its turn is never shadowed by the backing data that fill carries, and a miss that finds the fills waiting
 * holding their 64 MiB is served but not kept. A miss is answered on the thread the backing engine completes it on:
 * neither a busy completion worker of the backing device nor a fill still storing its data stands between the
 * backing's data and the reply.
 */
class PcacheMissFillTest {

    private static final long BACKING_SIZE = 32L << 20;
    /** The id of the pattern every backing sector holds before the test writes anything. */
    private static final long BACKING_ID = 4_242;
    private static final int LEN = 64 << 10;
    /** Two offsets in different 4 MiB stretches, so their fills take different subtree locks. */
    private static final long SLOW_OFF = 1L << 20;
    private static final long OTHER_OFF = 9L << 20;

    @Test
    void aSlowFillHoldsUpNeitherItsReaderNorAnotherRequest() throws Exception {
        HeldStoreRegion region = new HeldStoreRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), 1);
        try (CacheHarness harness = CacheHarness.on(region, gate, CacheHarness.quietOptions())) {
            try {
                MemorySegment slowBuf = MemorySegment.ofArray(new byte[LEN]);
                CompletableFuture<Void> slow = harness.cache.readAsync(SLOW_OFF, slowBuf);
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("the first miss reached the backing").isTrue();
                region.holdNextWrite();
                gate.open();
                assertThat(region.awaitHeld(10, TimeUnit.SECONDS)).as("the first fill is storing its data").isTrue();

                CacheHarness.await(slow);
                assertThat(ids(slowBuf, SLOW_OFF)).as("the slow fill's reader got the backing data")
                        .containsOnly(BACKING_ID);
                assertThat(harness.readIds(OTHER_OFF, LEN)).as("another miss completed meanwhile")
                        .containsOnly(BACKING_ID);
                assertThat(harness.readIds(SLOW_OFF, LEN)).as("a read of the range whose fill waits")
                        .containsOnly(BACKING_ID);
            } finally {
                region.release();
            }
            harness.awaitStatus("both fills landed", status -> status.counters().missFills() == 2);
            long hits = harness.cache.status().counters().readHitsFull();
            long fromBacking = harness.cache.status().counters().bytesFromBacking();
            assertThat(harness.readIds(SLOW_OFF, LEN)).containsOnly(BACKING_ID);
            assertThat(harness.readIds(OTHER_OFF, LEN)).containsOnly(BACKING_ID);
            assertThat(harness.cache.status().counters().readHitsFull()).as("both ranges now hit").isEqualTo(hits + 2);
            assertThat(harness.cache.status().counters().bytesFromBacking()).isEqualTo(fromBacking);
        }
    }

    @Test
    void aMissIsAnsweredOnTheEngineThreadWhileTheBackingCompletionWorkerIsHeld() throws Exception {
        // The gate passes held operations on to the in-memory engine on the opening thread, which the engine then
        // completes them on: the opener stands for an NBD client's reply reader or a file engine's pool thread.
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), 2);
        HeldStoreRegion region = new HeldStoreRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        try (CacheHarness harness = CacheHarness.on(region, gate, CacheHarness.quietOptions())) {
            CountDownLatch workerHeld = new CountDownLatch(1);
            CountDownLatch releaseWorker = new CountDownLatch(1);
            try {
                region.holdNextWrite();
                harness.backing.submitDirect(new MemoryRequest(BackingOp.READ, MemorySegment.ofArray(new byte[512]), 0,
                        (request, error) -> {
                            workerHeld.countDown();
                            awaitQuietly(releaseWorker);
                        }));
                MemorySegment buf = MemorySegment.ofArray(new byte[LEN]);
                CompletableFuture<Void> read = harness.cache.readAsync(SLOW_OFF, buf);
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("both reads reached the backing").isTrue();
                CompletableFuture<String> answeredOn = read.handle((ignored, error) -> Thread.currentThread().getName());
                Thread opener = Thread.ofPlatform().name("engine-reply-thread").start(gate::open);

                assertThat(workerHeld.await(10, TimeUnit.SECONDS)).as("the completion worker is held").isTrue();
                assertThat(answeredOn.get(10, TimeUnit.SECONDS)).as("the thread that answered the miss")
                        .isEqualTo("engine-reply-thread");
                assertThat(ids(buf, SLOW_OFF)).containsOnly(BACKING_ID);
                assertThat(region.awaitHeld(10, TimeUnit.SECONDS)).as("its fill is storing its data, held").isTrue();
                assertThat(harness.cache.status().counters().missFills()).as("answered before the fill landed")
                        .isZero();
                opener.join();
            } finally {
                releaseWorker.countDown();
                region.release();
            }
            harness.awaitStatus("the fill landed", status -> status.counters().missFills() == 1);
            assertThat(harness.readIds(SLOW_OFF, LEN)).containsOnly(BACKING_ID);
        }
    }

    @Test
    void aWriteWhileItsFillWaitsIsNeverShadowedByIt() throws Exception {
        HeldStoreRegion region = new HeldStoreRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), 1);
        try (CacheHarness harness = CacheHarness.on(region, gate, CacheHarness.quietOptions())) {
            try {
                CompletableFuture<Void> slow = harness.cache.readAsync(SLOW_OFF,
                        MemorySegment.ofArray(new byte[LEN]));
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).isTrue();
                region.holdNextWrite();
                gate.open();
                assertThat(region.awaitHeld(10, TimeUnit.SECONDS)).as("the first fill is storing its data").isTrue();
                CacheHarness.await(slow);

                assertThat(harness.readIds(OTHER_OFF, LEN)).as("a miss whose fill now waits behind the slow one")
                        .containsOnly(BACKING_ID);
                harness.writePattern(OTHER_OFF + 8 * 1024, 16 * 1024, 5, Durability.BUFFERED);
            } finally {
                region.release();
            }
            harness.awaitStatus("the slow fill landed", status -> status.counters().missFills() >= 1);
            assertOtherRange(harness, "after the fills ran");
            CacheHarness.await(harness.cache.flushAsync());
            harness.reopen();
            assertOtherRange(harness, "after reopen");
        }
    }

    @Test
    void aMissThatFindsTheFillQueueFullIsServedButNotKept() throws Exception {
        long backingSize = 128L << 20;
        int big = Pcache.MAX_IO_LENGTH;
        HeldStoreRegion region = new HeldStoreRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(backingSize, BACKING_ID), 1);
        try (CacheHarness harness = CacheHarness.on(region, gate, CacheHarness.quietOptions())) {
            try {
                CompletableFuture<Void> slow = harness.cache.readAsync(SLOW_OFF, MemorySegment.ofArray(new byte[LEN]));
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).isTrue();
                region.holdNextWrite();
                gate.open();
                assertThat(region.awaitHeld(10, TimeUnit.SECONDS)).as("the first fill is storing its data").isTrue();
                CacheHarness.await(slow);
                for (long off = 32L << 20; off < backingSize; off += big) {
                    assertThat(harness.readIds(off, big)).as("32 MiB miss at " + off).containsOnly(BACKING_ID);
                }
            } finally {
                region.release();
            }
            harness.awaitMissFills();
            long queued = LEN;
            long kept = 1;
            for (long slice = 4L << 20; queued + slice <= MissFills.QUEUE_BYTES; queued += slice) {
                kept++;
            }
            assertThat(harness.cache.status().counters().missFills()).as("fills that found room").isEqualTo(kept);

            long lastKept = (32L << 20) + (kept - 2) * (4L << 20);
            long firstSkipped = lastKept + (4L << 20);
            long fromBacking = harness.cache.status().counters().bytesFromBacking();
            assertThat(harness.readIds(lastKept, 4 << 20)).containsOnly(BACKING_ID);
            assertThat(harness.cache.status().counters().bytesFromBacking()).as("a kept range hits")
                    .isEqualTo(fromBacking);
            assertThat(harness.readIds(firstSkipped, 4 << 20)).containsOnly(BACKING_ID);
            assertThat(harness.cache.status().counters().bytesFromBacking()).as("a skipped range is read again")
                    .isEqualTo(fromBacking + (4L << 20));
            harness.awaitMissFills();
            assertThat(harness.cache.status().counters().missFills()).as("and kept this time").isEqualTo(kept + 1);
        }
    }

    private static void assertOtherRange(CacheHarness harness, String when) throws IOException {
        long[] ids = harness.readIds(OTHER_OFF, LEN);
        for (int sector = 0; sector < ids.length; sector++) {
            long at = (long) sector * SectorPattern.SECTOR;
            long expected = at >= 8 * 1024 && at < 24 * 1024 ? 5 : BACKING_ID;
            assertThat(ids[sector]).as(when + ": sector at +" + at).isEqualTo(expected);
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            latch.await(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static long[] ids(MemorySegment buf, long offset) {
        long[] ids = new long[(int) (buf.byteSize() / SectorPattern.SECTOR)];
        for (int i = 0; i < ids.length; i++) {
            long at = (long) i * SectorPattern.SECTOR;
            ids[i] = SectorPattern.idOf(buf, at, offset + at);
        }
        return ids;
    }
}
