package org.pcache.cache;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.FilterEngine;
import org.pcache.backing.IoEngine;
import org.pcache.backing.LatencyEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.TestRegions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Writeback takes the ksets from dirty_tail to the next barrier as one batch: their keys collapsed (later ones win),
 * their extents sorted by offset and merged where contiguous, a bounded number of writes in flight, one backing flush
 * per batch; a backing error sends the whole batch again; the dirty level decides the depth. Drives the writer,
 * writeback and the kset streams directly, so which ksets exist when writeback looks is fixed.
 */
class WritebackBatchTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final int LEN = 4096;

    private final CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
    private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
    private final MemoryEngine disk = new MemoryEngine(BACKING_SIZE);
    private BackingDevice backing;
    private KsetLogWriter log;
    private Ksets ksets;
    private CacheWrite writes;
    private Writeback writeback;

    /** Builds the parts over {@code engine} (which ends in {@link #disk}), writeback not started. */
    private void open(IoEngine engine, CacheOptions options) throws IOException {
        CacheDevice device = CacheDevice.open(region, CacheDevice.Options.defaults());
        SegmentMap segments = new SegmentMap(device, ranges -> { });
        KeyTree tree = new KeyTree(BACKING_SIZE);
        Replay replay = new Replay(device, segments, tree, BACKING_SIZE, false);
        CachePos head = replay.run();
        backing = BackingDevice.start(engine);
        log = new KsetLogWriter(region, segments, head, replay.keyHeadSeq(), replay.dirtyTailSeq(), 0,
                () -> writeback.kick());
        FailStopRegion failStop = new FailStopRegion(region);
        writeback = new Writeback(device, failStop, backing, log, segments, options, () -> false, () -> { });
        ksets = new Ksets(new Kset[] {new Kset(log, failStop, timer, Duration.ofHours(1).toNanos())});
        writes = new CacheWrite(region, tree, new DataHeads(segments, 1), ksets, segments,
                new DeferredRequests(timer), () -> { }, () -> { }, false);
    }

    @AfterEach
    void closeParts() throws InterruptedException {
        if (writeback != null) {
            writeback.stop(System.nanoTime() + CacheHarness.TIMEOUT.toNanos());
        }
        if (backing != null) {
            backing.stop();
        }
        timer.shutdownNow();
        region.close();
    }

    @Test
    void theKsetsBetweenTwoBarriersGoBackAsOneBatchWithOneBackingFlush() throws IOException {
        FaultEngine counting = new FaultEngine(disk);
        open(counting, CacheOptions.defaults());
        for (int i = 0; i < 5; i++) {
            write(i * 2L * LEN, i + 1);
            closeKset(); // as the kset timer would: no barrier
        }
        barrier();
        drain();

        assertThat(counting.seen(EngineOp.FLUSH)).as("backing flushes for 5 ksets and one barrier").isEqualTo(1);
        WritebackStatus status = writeback.status();
        assertThat(status.batches()).isEqualTo(1);
        assertThat(status.backingFlushes()).isEqualTo(1);
        assertThat(status.ksets()).as("5 ksets and the barrier's empty one").isEqualTo(6);
        for (int i = 0; i < 5; i++) {
            assertThat(diskId(i * 2L * LEN)).isEqualTo(i + 1);
        }
    }

    @Test
    void everyBarrierEndsABatchAndSoDoesTheEndOfTheLog() throws IOException {
        FaultEngine counting = new FaultEngine(disk);
        open(counting, CacheOptions.defaults());
        write(0, 1);
        barrier();
        write(2 * LEN, 2);
        barrier();
        write(4 * LEN, 3);
        closeKset();
        drain();

        assertThat(writeback.status().batches()).isEqualTo(3);
        assertThat(counting.seen(EngineOp.FLUSH)).isEqualTo(3);
    }

    @Test
    void aFuaWriteIsABarrier() throws IOException {
        FaultEngine counting = new FaultEngine(disk);
        open(counting, CacheOptions.defaults());
        write(0, 1);
        writeFua(2 * LEN, 2);
        write(4 * LEN, 3);
        closeKset();
        drain();

        assertThat(writeback.status().batches()).as("up to the FUA kset, then the rest").isEqualTo(2);
    }

    @Test
    void laterKeysOfABatchWinAndOverwrittenExtentsAreNotWritten() throws IOException {
        FaultEngine counting = new FaultEngine(disk);
        open(counting, CacheOptions.defaults());
        write(0, 1);
        closeKset();
        write(0, 2);
        closeKset();
        barrier();
        drain();

        assertThat(diskId(0)).isEqualTo(2);
        assertThat(counting.seen(EngineOp.WRITE)).as("the overwritten extent is not sent").isEqualTo(1);
    }

    @Test
    void extentsContiguousOnTheBackingAndInTheRegionMergeIntoOneWrite() throws IOException {
        Recording recording = new Recording(disk);
        open(recording, CacheOptions.defaults());
        for (int i = 0; i < 8; i++) {
            write(i * (long) LEN, i + 1); // the data head places them one after the other
            closeKset();
        }
        barrier();
        drain();

        assertThat(recording.writes()).containsExactly(new long[] {0, 8 * LEN});
        for (int i = 0; i < 8; i++) {
            assertThat(diskId(i * (long) LEN)).isEqualTo(i + 1);
        }
    }

    @Test
    void writesOfABatchGoOutSortedByOffset() throws IOException {
        Recording recording = new Recording(disk);
        open(recording, CacheOptions.defaults().withWritebackDepth(1));
        long[] offsets = {40 * LEN, 8 * LEN, 24 * LEN, 0, 16 * LEN}; // not adjacent: nothing merges
        for (int i = 0; i < offsets.length; i++) {
            write(offsets[i], i + 1);
            closeKset();
        }
        barrier();
        drain();

        assertThat(recording.writes()).extracting(w -> w[0]).containsExactly(0L, 8L * LEN, 16L * LEN, 24L * LEN,
                40L * LEN);
    }

    @Test
    void atMostTheDepthOfWritesIsInFlightAndThePipelineFillsIt() throws IOException {
        LatencyEngine slow = new LatencyEngine(disk).delay(EngineOp.WRITE, Duration.ofMillis(2));
        Recording recording = new Recording(slow);
        open(recording, CacheOptions.defaults().withWritebackDepth(4).withWritebackWatermarks(0, 0));
        for (int i = 0; i < 64; i++) {
            write(i * 2L * LEN, i + 1);
        }
        barrier();
        drain();

        assertThat(recording.maxInFlight()).isEqualTo(4);
        assertThat(recording.writes()).hasSize(64);
    }

    @Test
    void betweenTheWatermarksWritebackKeepsAQuarterOfItsDepthInFlight() throws IOException {
        LatencyEngine slow = new LatencyEngine(disk).delay(EngineOp.WRITE, Duration.ofMillis(2));
        Recording recording = new Recording(slow);
        open(recording, CacheOptions.defaults().withWritebackDepth(8).withWritebackWatermarks(0, 100));
        for (int i = 0; i < 64; i++) {
            write(i * 2L * LEN, i + 1);
        }
        barrier();
        long target = log.seq();
        writeback.start();
        long deadline = System.nanoTime() + CacheHarness.TIMEOUT.toNanos();
        while (log.dirtyTailSeq() < target) { // not a drain: a drain waiting would get the full depth
            assertThat(System.nanoTime()).as("written back within %s", CacheHarness.TIMEOUT).isLessThan(deadline);
            LockSupport.parkNanos(1_000_000);
        }

        assertThat(recording.maxInFlight()).isEqualTo(2);
    }

    @Test
    void belowTheLowWatermarkWritebackIdlesUntilADrainAsks() throws Exception {
        FaultEngine counting = new FaultEngine(disk);
        open(counting, CacheOptions.defaults().withWritebackWatermarks(50, 90));
        write(0, 1);
        barrier();

        assertThat(writeback.step()).as("a step below the low watermark").isFalse();
        assertThat(log.dirtyTailSeq()).isZero();
        writeback.setWatermarks(0, 90);
        assertThat(writeback.step()).as("a step once the low watermark is 0").isTrue();
        write(2 * LEN, 2);
        barrier();
        writeback.setWatermarks(50, 90);
        CompletableFuture<Void> drained = new CompletableFuture<>();
        writeback.drainTo(log.seq(), drained);
        assertThat(writeback.step()).as("a step while a drain waits").isTrue();
        assertThat(drained).isCompleted();
        assertThat(counting.seen(EngineOp.WRITE)).isEqualTo(2);
    }

    @Test
    void aBatchThatMetABackingErrorIsSentAgainWholeAndFlushedOnce() throws IOException {
        FaultEngine faulty = new FaultEngine(disk).failNth(EngineOp.WRITE, 3);
        open(faulty, CacheOptions.defaults().withWritebackDepth(1));
        for (int i = 0; i < 5; i++) {
            write(i * 2L * LEN, i + 1);
            closeKset();
        }
        barrier();
        drain();

        assertThat(writeback.status().errors()).isEqualTo(1);
        assertThat(faulty.seen(EngineOp.WRITE)).as("3 sent before the error, then all 5 again").isEqualTo(8);
        assertThat(faulty.seen(EngineOp.FLUSH)).as("no flush after the failed attempt").isEqualTo(1);
        for (int i = 0; i < 5; i++) {
            assertThat(diskId(i * 2L * LEN)).isEqualTo(i + 1);
        }
    }

    private void write(long offset, long id) throws IOException {
        write(offset, id, Durability.BUFFERED);
    }

    private void writeFua(long offset, long id) throws IOException {
        write(offset, id, Durability.FUA);
    }

    private void write(long offset, long id, Durability durability) throws IOException {
        MemorySegment buf = MemorySegment.ofArray(new byte[LEN]);
        SectorPattern.fill(buf, offset, id);
        CompletableFuture<Void> written = new CompletableFuture<>();
        writes.write(offset, buf, durability, written);
        CacheHarness.await(written);
    }

    /** Closes the kset as its timer would: no barrier. */
    private void closeKset() {
        assertThat(ksets.closeAll(false)).isTrue();
    }

    /** What a client flush does. */
    private void barrier() {
        assertThat(ksets.closeAll(true) && log.markBarrier()).isTrue();
    }

    private void drain() throws IOException {
        writeback.start();
        CacheHarness.await(awaitTail(log.seq()));
    }

    private CompletableFuture<Void> awaitTail(long seq) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        writeback.drainTo(seq, done);
        return done;
    }

    private long diskId(long offset) {
        MemorySegment buf = MemorySegment.ofArray(new byte[LEN]);
        disk.read(offset, buf, error -> {
            if (error != null) {
                throw new UncheckedIOException(error);
            }
        });
        return SectorPattern.idOf(buf, 0, offset);
    }

    /** Records each write's offset and length in arrival order, and the most writes in flight at once. */
    private static final class Recording extends FilterEngine {
        private final List<long[]> writes = new ArrayList<>();
        private final AtomicInteger inFlight = new AtomicInteger();
        private final AtomicInteger maxInFlight = new AtomicInteger();

        Recording(IoEngine next) {
            super(next);
        }

        @Override
        public void write(long offset, MemorySegment src, IoCallback done) {
            synchronized (writes) {
                writes.add(new long[] {offset, src.byteSize()});
            }
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            next.write(offset, src, error -> {
                inFlight.decrementAndGet();
                done.completed(error);
            });
        }

        List<long[]> writes() {
            synchronized (writes) {
                return List.copyOf(writes);
            }
        }

        int maxInFlight() {
            return maxInFlight.get();
        }
    }
}
