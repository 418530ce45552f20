package org.pcache.cache;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A drain waits for writeback to reach the end of the log as it was when the drain began; writeback may have gone
 * past that point already when the drain registers (more ksets were written meanwhile), and the drain must still
 * complete. Drives the writer, writeback and drain directly, so the interleaving is fixed.
 */
class WritebackDrainTest {

    private static final long BACKING_SIZE = 16L << 20;

    private final CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
    private final ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
    private BackingDevice backing;
    private KsetLogWriter log;
    private Ksets ksets;
    private CacheWrite writes;
    private Writeback writeback;

    @BeforeEach
    void openParts() throws IOException {
        CacheDevice device = CacheDevice.open(region, CacheDevice.Options.defaults());
        SegmentMap segments = new SegmentMap(device, ranges -> { });
        KeyTree tree = new KeyTree(BACKING_SIZE);
        Replay replay = new Replay(device, segments, tree, BACKING_SIZE, false);
        CachePos head = replay.run();
        backing = BackingDevice.start(new MemoryEngine(BACKING_SIZE));
        log = new KsetLogWriter(region, segments, head, replay.keyHeadSeq(), replay.dirtyTailSeq(), 0,
                () -> writeback.kick());
        FailStopRegion failStop = new FailStopRegion(region);
        writeback = new Writeback(device, failStop, backing, log, segments, CacheOptions.defaults(), () -> false,
                () -> { });
        ksets = new Ksets(new Kset[] {new Kset(log, failStop, timer, Duration.ofHours(1).toNanos())});
        writes = new CacheWrite(region, tree, new DataHeads(segments, 1), ksets, segments,
                new DeferredRequests(timer), () -> { }, () -> { }, false);
    }

    @AfterEach
    void closeParts() throws InterruptedException {
        writeback.stop(System.nanoTime() + CacheHarness.TIMEOUT.toNanos());
        backing.stop();
        timer.shutdownNow();
        region.close();
    }

    @Test
    void aDrainWhoseTargetWritebackPassedBeforeItRegisteredCompletes() throws IOException {
        writeAndFlush(0);
        long target = log.seq();
        writeAndFlush(1 << 20);
        writeback.start();
        CompletableFuture<Void> later = new CompletableFuture<>();
        writeback.drainTo(log.seq(), later);
        CacheHarness.await(later);

        CompletableFuture<Void> drain = new CompletableFuture<>();
        writeback.drainTo(target, drain);

        assertThat(drain).as("a drain to a point writeback passed already").isCompleted();
    }

    private void writeAndFlush(long offset) throws IOException {
        CompletableFuture<Void> written = new CompletableFuture<>();
        writes.write(offset, MemorySegment.ofArray(new byte[4096]), Durability.BUFFERED, written);
        CacheHarness.await(written);
        assertThat(ksets.closeAll(true)).isTrue();
    }
}
