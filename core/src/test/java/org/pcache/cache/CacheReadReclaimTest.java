package org.pcache.cache;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A hit whose segment GC reclaims and a writer reuses while the read copies it is a miss, not a data CRC error: the
 * read path is driven directly, and the reclaim is made to happen at the exact point the read verifies the CRC.
 */
class CacheReadReclaimTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final long BACKING_ID = 4_242;
    private static final int LENGTH = 64 << 10;

    private final ReclaimingRegion region = new ReclaimingRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
    private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
    private BackingDevice backing;
    private KeyTree tree;
    private CacheStats stats;
    private CacheWrite writes;
    private MissFills fills;
    private CacheRead reads;

    @BeforeEach
    void openParts() throws IOException {
        CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(true, 0, 70));
        SegmentMap segments = new SegmentMap(device, ranges -> { });
        tree = new KeyTree(BACKING_SIZE);
        CachePos head = new Replay(device, segments, tree, BACKING_SIZE, true).run();
        KsetLogWriter log = new KsetLogWriter(region, segments, head, 0, 0, 0, () -> { });
        Ksets ksets = new Ksets(new Kset[] {new Kset(log, new FailStopRegion(region), timer, Duration.ofHours(1).toNanos())});
        DataHeads heads = new DataHeads(segments, 1);
        backing = BackingDevice.start(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        stats = new CacheStats();
        writes = new CacheWrite(region, tree, heads, ksets, segments, new DeferredRequests(timer), () -> { }, () -> { },
                true);
        fills = new MissFills(new FailStopRegion(region), tree, heads, ksets, segments, stats, true);
        fills.start();
        reads = new CacheRead(region, tree, fills, backing, stats, true, 0);
    }

    @AfterEach
    void closeParts() throws InterruptedException {
        fills.stop(System.nanoTime() + CacheHarness.TIMEOUT.toNanos());
        backing.stop();
        timer.shutdownNow();
    }

    @Test
    void hitReclaimedAndReusedBeforeItsCrcCheckIsReadFromTheBackingDevice() throws IOException {
        MemorySegment data = MemorySegment.ofArray(new byte[LENGTH]);
        SectorPattern.fill(data, 0, 1);
        CompletableFuture<Void> written = new CompletableFuture<>();
        writes.write(0, data, Durability.BUFFERED, written);
        CacheHarness.await(written);
        CacheKey key = tree.subtree(0).keyAt(0);
        region.beforeNextView = () -> reclaimAndReuse(key.seg);

        MemorySegment dst = MemorySegment.ofArray(new byte[LENGTH]);
        CompletableFuture<Void> read = new CompletableFuture<>();
        reads.read(0, dst, read, true);
        CacheHarness.await(read);

        assertThat(region.beforeNextView).as("the reclaim ran inside the read").isNull();
        for (long at = 0; at < LENGTH; at += SectorPattern.SECTOR) {
            assertThat(SectorPattern.idOf(dst, at, at)).as("sector at %d", at).isEqualTo(BACKING_ID);
        }
        assertThat(stats.dataCrcErrors.sum()).as("data CRC errors").isZero();
    }

    /** What GC and a later writer do to a segment: bump its generation, then write other data into it. */
    private void reclaimAndReuse(CacheSegment seg) {
        seg.bumpGen();
        MemorySegment other = MemorySegment.ofArray(new byte[LENGTH]);
        SectorPattern.fill(other, 0, 2);
        region.write(seg.dataOffset(), other, 0, LENGTH);
    }

    /** A region that runs a hook, once, before it hands out the next view. */
    private static final class ReclaimingRegion implements PmemRegion {
        private final PmemRegion inner;
        volatile Runnable beforeNextView;

        ReclaimingRegion(PmemRegion inner) {
            this.inner = inner;
        }

        @Override
        public MemorySegment view(long offset, long length) {
            Runnable hook = beforeNextView;
            if (hook != null) {
                beforeNextView = null;
                hook.run();
            }
            return inner.view(offset, length);
        }

        @Override
        public long size() {
            return inner.size();
        }

        @Override
        public void write(long offset, MemorySegment src, long srcOffset, long length) {
            inner.write(offset, src, srcOffset, length);
        }

        @Override
        public void read(long offset, MemorySegment dst, long dstOffset, long length) {
            inner.read(offset, dst, dstOffset, length);
        }

        @Override
        public void zero(long offset, long length) {
            inner.zero(offset, length);
        }

        @Override
        public long getLongAcquire(long offset) {
            return inner.getLongAcquire(offset);
        }

        @Override
        public void putLongRelease(long offset, long value) {
            inner.putLongRelease(offset, value);
        }

        @Override
        public void flush(long offset, long length) {
            inner.flush(offset, length);
        }

        @Override
        public void drain() {
            inner.drain();
        }

        @Override
        public PersistenceMode mode() {
            return inner.mode();
        }

        @Override
        public void close() {
            inner.close();
        }
    }
}
