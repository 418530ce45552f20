package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.backing.FilterEngine;
import org.pcache.backing.GateEngine;
import org.pcache.backing.IoEngine;
import org.pcache.backing.LossyEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheInfo;
import org.pcache.pmem.TestRegions;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Each cache mode's routing, the online switch, the sequential cutoff and the ordering rule of bypassing writes:
 * where the data is once a request completed, and that reads always see the newest data.
 */
class PcacheModesTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final long BACKING_ID = 7;
    private static final int LEN = 64 << 10;
    private static final long OFF = 3L << 20;

    private static CacheHarness harness(CacheMode mode) throws IOException {
        return CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions().withCacheMode(mode));
    }

    @Test
    void writeThroughIsOnTheBackingDeviceWhenItCompletesAndReadsHitItsCleanCopy() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITETHROUGH)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            assertThat(backingIds(harness, OFF, LEN)).containsOnly(1L);
            assertThat(harness.cache.status().writeback().dirtyBytes()).as("the cached copy is clean").isZero();

            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);
            assertThat(harness.cache.status().counters().readHitsFull()).as("served from the cache").isEqualTo(1);

            harness.writePattern(OFF, LEN, 2, Durability.BUFFERED);
            harness.reopen();
            assertThat(harness.readIds(OFF, LEN)).as("the newer clean copy replaced the older one").containsOnly(2L);
            assertThat(backingIds(harness, OFF, LEN)).containsOnly(2L);
        }
    }

    @Test
    void writeThroughOverDirtyDataIsCachedAsWriteBackSoWritebackCannotCopyOlderDataOverIt() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEBACK)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            harness.cache.setMode(CacheMode.WRITETHROUGH);
            harness.writePattern(OFF, LEN, 2, Durability.BUFFERED);
            assertThat(harness.cache.status().bypass().cachedInstead()).isEqualTo(1);
            assertThat(harness.readIds(OFF, LEN)).containsOnly(2L);

            harness.cache.drain();
            assertThat(backingIds(harness, OFF, LEN)).as("writeback ended with the newest").containsOnly(2L);
        }
    }

    @Test
    void writeAroundGoesToTheBackingDeviceOnlyAndReadsFill() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEAROUND)) {
            int segsUsed = harness.cache.status().segsUsed();
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            assertThat(backingIds(harness, OFF, LEN)).containsOnly(1L);
            CacheStatus status = harness.cache.status();
            assertThat(status.segsUsed()).as("nothing cached").isEqualTo(segsUsed);
            assertThat(status.bypass().modeRequests()).isEqualTo(1);
            assertThat(status.bypass().modeBytes()).isEqualTo(LEN);

            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);
            harness.awaitMissFills();
            assertThat(harness.cache.status().counters().missFills())
                    .as("not kept while the backing device could still lose the write it read").isZero();

            CacheHarness.await(harness.cache.flushAsync());
            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);
            harness.awaitMissFills();
            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);
            assertThat(harness.cache.status().counters().readHitsFull()).as("after a flush the miss was kept")
                    .isEqualTo(1);
        }
    }

    @Test
    void writeAroundOverCachedDataGoesIntoTheCacheAndReadsAndWritebackSeeTheNewest() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEBACK)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            harness.cache.setMode(CacheMode.WRITEAROUND);
            harness.writePattern(OFF, LEN, 2, Durability.BUFFERED);
            harness.writePattern(OFF + LEN, LEN, 3, Durability.BUFFERED);
            CacheStatus status = harness.cache.status();
            assertThat(status.bypass().cachedInstead()).as("only the write over dirty data").isEqualTo(1);
            assertThat(backingIds(harness, OFF + LEN, LEN)).containsOnly(3L);
            assertThat(harness.readIds(OFF, 2 * LEN)).containsExactly(concat(2L, 3L));

            harness.cache.drain();
            assertThat(backingIds(harness, OFF, 2 * LEN)).containsExactly(concat(2L, 3L));
        }
    }

    @Test
    void writeOnlyCachesWritesAndKeepsNoReadMiss() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEONLY)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            assertThat(backingIds(harness, OFF, LEN)).as("write-back: not on the backing yet").containsOnly(BACKING_ID);
            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);

            assertThat(harness.readIds(OFF + LEN, LEN)).containsOnly(BACKING_ID);
            harness.awaitMissFills();
            assertThat(harness.readIds(OFF + LEN, LEN)).containsOnly(BACKING_ID);
            CacheStatus status = harness.cache.status();
            assertThat(status.counters().missFills()).isZero();
            assertThat(status.counters().readMisses()).as("both reads of the uncached range missed").isEqualTo(2);
        }
    }

    @Test
    void passThroughCachesNothingAndStillServesDirtyDataFromBeforeTheSwitch() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEBACK)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            harness.cache.setMode(CacheMode.PASSTHROUGH);
            int segsUsed = harness.cache.status().segsUsed();
            harness.writePattern(OFF + LEN, LEN, 2, Durability.FUA);
            assertThat(backingIds(harness, OFF + LEN, LEN)).containsOnly(2L);
            assertThat(harness.readIds(OFF, 3 * LEN)).containsExactly(concat(1L, 2L, BACKING_ID));
            harness.awaitMissFills();
            CacheStatus status = harness.cache.status();
            assertThat(status.counters().missFills()).isZero();
            assertThat(status.segsUsed()).isEqualTo(segsUsed);
            assertThat(status.bypass().modeRequests()).as("the write and the read").isEqualTo(2);

            harness.cache.drain();
            assertThat(backingIds(harness, OFF, 3 * LEN)).containsExactly(concat(1L, 2L, BACKING_ID));
        }
    }

    @Test
    void theModeIsPersistedInCacheInfoAndSurvivesAReopen() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEBACK)) {
            for (CacheMode mode : CacheMode.values()) {
                harness.cache.setMode(mode);
                assertThat(harness.cache.mode()).isEqualTo(mode);
                assertThat(harness.cache.status().mode()).isEqualTo(mode);
                assertThat(CacheInfo.fromFlags(0, 0, harness.cache.status().cacheFlags()).cacheMode())
                        .isEqualTo(mode.onMedia());
            }
            harness.cache.setMode(CacheMode.WRITEAROUND);
            harness.reopen();
            assertThat(harness.cache.mode()).isEqualTo(CacheMode.WRITEAROUND);
        }
    }

    @Test
    void aMissFillThatReadOldDataBeforeABypassingWriteIsNeverKept() throws Exception {
        HeldStoreRegion region = new HeldStoreRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        GateEngine gate = new GateEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), 1);
        try (CacheHarness harness = CacheHarness.on(region, gate, CacheHarness.quietOptions())) {
            MemorySegment buf = MemorySegment.ofArray(new byte[LEN]);
            try {
                CompletableFuture<Void> read = harness.cache.readAsync(OFF, buf);
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("the miss reached the backing").isTrue();
                region.holdNextWrite();
                gate.open();
                assertThat(region.awaitHeld(10, TimeUnit.SECONDS)).as("the fill is storing the old data").isTrue();
                CacheHarness.await(read);

                harness.cache.setMode(CacheMode.WRITEAROUND);
                harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            } finally {
                region.release();
            }
            harness.awaitMissFills();
            assertThat(harness.cache.status().counters().missFills()).as("the fill was dropped").isZero();
            harness.cache.setMode(CacheMode.WRITEBACK);
            assertThat(harness.readIds(OFF, LEN)).as("the old data was not kept over the newer write")
                    .containsOnly(1L);
        }
    }

    @Test
    void aConnectionPastTheSequentialCutoffBypassesTheCacheWhileOtherRequestsAreCached() throws Exception {
        CacheOptions options = CacheHarness.quietOptions().withSequentialCutoff(1 << 20);
        try (CacheHarness harness = CacheHarness.mapped(new MemoryEngine(BACKING_SIZE), options)) {
            ClientStream stream = harness.cache.openStream();
            int chunk = 256 << 10;
            for (int i = 0; i < 16; i++) {
                write(stream, (long) i * chunk, chunk, 100 + i);
            }
            CacheStatus status = harness.cache.status();
            assertThat(backingIds(harness, 0, 4 * chunk)).as("the first 1 MiB is only cached")
                    .containsOnly(SectorPattern.ZERO);
            assertThat(status.bypass().sequentialRequests()).isEqualTo(12);
            assertThat(status.bypass().sequentialBytes()).isEqualTo(12L * chunk);
            assertThat(backingIds(harness, 4L * chunk, 12 * chunk)).as("the rest is on the backing device")
                    .containsExactly(concatRuns(chunk, 104, 12));

            ClientStream other = harness.cache.openStream();
            write(other, 32L << 20, chunk, 200);
            write(other, 40L << 20, chunk, 201);
            assertThat(harness.cache.status().bypass().sequentialRequests()).as("random writes are cached")
                    .isEqualTo(12);

            CacheHarness.await(harness.cache.flushAsync());
            MemorySegment buf = MemorySegment.ofArray(new byte[chunk]);
            for (int i = 0; i < 16; i++) {
                CacheHarness.await(stream.readAsync((16L << 20) + (long) i * chunk, buf));
            }
            harness.awaitMissFills();
            status = harness.cache.status();
            assertThat(status.counters().missFills()).as("only the read run's first 1 MiB filled").isEqualTo(4);
            assertThat(status.bypass().sequentialRequests()).isEqualTo(24);
        }
    }

    @Test
    void aSequentialCutoffOfZeroCachesEverything() throws Exception {
        CacheOptions options = CacheHarness.quietOptions().withSequentialCutoff(0);
        try (CacheHarness harness = CacheHarness.mapped(new MemoryEngine(BACKING_SIZE), options)) {
            ClientStream stream = harness.cache.openStream();
            for (int i = 0; i < 16; i++) {
                write(stream, (long) i * LEN * 4, LEN * 4, 1 + i);
            }
            assertThat(harness.cache.status().bypass().sequentialRequests()).isZero();
            assertThat(backingIds(harness, 0, 16 * LEN * 4)).as("all of it is only cached")
                    .containsOnly(SectorPattern.ZERO);
        }
    }

    @Test
    void aWriteZeroesOfTheWholeDeviceStaysInTheCacheAsZeroKeysAndBypassesNothing() throws Exception {
        try (CacheHarness harness = harness(CacheMode.WRITEBACK)) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            long used = harness.cache.status().segsUsed();
            CacheHarness.await(harness.cache.writeZeroesAsync(0, BACKING_SIZE, Durability.BUFFERED));
            assertThat(harness.cache.status().bypass().modeRequests() + harness.cache.status().bypass()
                    .sequentialRequests()).as("no write-zeroes is sent past the cache for its length").isZero();
            assertThat(harness.cache.status().segsUsed()).as("it takes no data space").isEqualTo(used);
            assertThat(harness.readIds(OFF, LEN)).containsOnly(SectorPattern.ZERO);
            assertThat(backingIds(harness, OFF, LEN)).as("the zeroes wait in the cache").containsOnly(BACKING_ID);
            harness.cache.drain();
            assertThat(backingIds(harness, OFF, LEN)).as("written back in log order, after the data")
                    .containsOnly(SectorPattern.ZERO);
        }
    }

    @Test
    void aWriteThroughWriteIsDurableOnTheBackingDeviceBeforeItsCleanCopyIsCached() throws Exception {
        LossyEngine lossy = new LossyEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.mapped(lossy,
                CacheHarness.quietOptions().withCacheMode(CacheMode.WRITETHROUGH))) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            lossy.crash(1);
            assertThat(backingIds(harness, OFF, LEN)).as("a power cut of the backing device keeps the write")
                    .containsOnly(1L);
            assertThat(harness.readIds(OFF, LEN)).containsOnly(1L);
        }
    }

    @Test
    void aFlushAfterBypassingWritesFlushesTheBackingDevice() throws Exception {
        CountedFlushes engine = new CountedFlushes(new MemoryEngine(BACKING_SIZE));
        try (CacheHarness harness = CacheHarness.mapped(engine,
                CacheHarness.quietOptions().withCacheMode(CacheMode.PASSTHROUGH))) {
            harness.writePattern(OFF, LEN, 1, Durability.BUFFERED);
            int flushes = engine.flushes.get();
            CacheHarness.await(harness.cache.flushAsync());
            assertThat(engine.flushes.get()).isEqualTo(flushes + 1);
            CacheHarness.await(harness.cache.flushAsync());
            assertThat(engine.flushes.get()).as("nothing new reached it").isEqualTo(flushes + 1);
        }
    }

    /** Counts the backing device's flushes. */
    private static final class CountedFlushes extends FilterEngine {
        final AtomicInteger flushes = new AtomicInteger();

        CountedFlushes(IoEngine next) {
            super(next);
        }

        @Override
        public void flush(IoEngine.IoCallback done) {
            flushes.incrementAndGet();
            next.flush(done);
        }
    }

    private static void write(ClientStream stream, long off, int len, long id) throws IOException {
        MemorySegment buf = MemorySegment.ofArray(new byte[len]);
        SectorPattern.fill(buf, off, id);
        CacheHarness.await(stream.writeAsync(off, buf, Durability.BUFFERED));
    }

    static long[] backingIds(CacheHarness harness, long off, int len) throws IOException {
        MemorySegment buf = MemorySegment.ofArray(new byte[len]);
        harness.backing.read(off, buf);
        long[] ids = new long[len / SectorPattern.SECTOR];
        for (int i = 0; i < ids.length; i++) {
            long at = (long) i * SectorPattern.SECTOR;
            ids[i] = SectorPattern.idOf(buf, at, off + at);
        }
        return ids;
    }

    /** The ids of consecutive {@value #LEN}-byte runs, one id each. */
    private static long[] concat(long... runIds) {
        return concatIds(LEN, runIds);
    }

    private static long[] concatRuns(int runLength, long firstId, int runs) {
        long[] ids = new long[runs];
        for (int i = 0; i < runs; i++) {
            ids[i] = firstId + i;
        }
        return concatIds(runLength, ids);
    }

    private static long[] concatIds(int runLength, long[] runIds) {
        int perRun = runLength / SectorPattern.SECTOR;
        long[] ids = new long[perRun * runIds.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = runIds[i / perRun];
        }
        return ids;
    }
}
