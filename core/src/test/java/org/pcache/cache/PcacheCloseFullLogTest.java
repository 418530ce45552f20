package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.GateEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.ScheduledThreadPoolExecutor;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * Close is bounded and never drops an acknowledged write: when the kset log is full at close, close waits (at most its
 * timeout) for room, and when none comes it says what is left and leaves the cache able to finish later, instead of
 * closing without the pending keys. The cache is built from its parts so the log can be made full deterministically:
 * the key head sits near the end of its segment and the test holds every free segment, as a stalled writeback would.
 * The write is found after reopen in the cache or, written back, on the backing device: either way its key was logged.
 */
class PcacheCloseFullLogTest {

    private static final long BACKING_SIZE = 16L << 20;
    /** Room for a LAST kset and the terminator, not for a kset of one key. */
    private static final int HEAD_ROOM = 64;

    @Test
    void aFullLogAtCloseDelaysTheCloseAndLosesNoAcknowledgedWrite() throws Exception {
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        BackingDevice backing = BackingDevice.start(new MemoryEngine(BACKING_SIZE));
        CacheOptions options = CacheHarness.quietOptions().withKsetCount(1).withDataHeadCount(1);
        CacheDevice device = CacheDevice.open(region, CacheDevice.Options.defaults());
        CachePos nearEnd = new CachePos(0, CacheDeviceLayout.SEGMENT_DATA_SIZE - HEAD_ROOM);
        device.writeDirtyTail(nearEnd);
        device.writeKeyTail(nearEnd);
        ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1);
        scheduler.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        KeyTree tree = new KeyTree(BACKING_SIZE);
        KeyCleaner cleaner = new KeyCleaner(tree, scheduler);
        DeferredRequests deferred = new DeferredRequests(scheduler);
        SegmentMap segments = new SegmentMap(device, ranges -> {
            deferred.segmentFreed();
            cleaner.segmentFreed(ranges);
        });
        Replay replay = new Replay(device, segments, tree, BACKING_SIZE, false);
        CachePos head = replay.run();
        assertThat(head).isEqualTo(nearEnd);
        Pcache cache = new Pcache(device, new FailStopRegion(region), backing, options, CacheMode.WRITEBACK, new CacheStart.Replayed(scheduler,
                tree, segments, deferred, cleaner, head, replay.keyHeadSeq(), replay.dirtyTailSeq(), 0));
        cache.start();
        List<CacheSegment> held = new ArrayList<>();
        while (segments.usedCount() < segments.count() - 2) {
            held.add(segments.allocateLog());
        }
        MemorySegment data = MemorySegment.ofArray(new byte[4096]);
        SectorPattern.fill(data, 0, 7);
        cache.write(0, data, Durability.BUFFERED);
        held.add(segments.allocateLog());
        assertThat(segments.allocateLog()).as("a free segment").isNull();

        Throwable left = catchThrowable(() -> cache.close(Duration.ofMillis(50)));

        assertThat(left).isInstanceOf(CacheCloseException.class).hasMessageContaining("1 key");
        segments.freeLog(held.removeLast());
        cache.close();

        Pcache reopened = Pcache.open(region, backing, options);
        MemorySegment read = MemorySegment.ofArray(new byte[4096]);
        reopened.read(0, read);
        reopened.close();
        backing.stop();
        region.close();
        for (long at = 0; at < 4096; at += SectorPattern.SECTOR) {
            assertThat(SectorPattern.idOf(read, at, at)).as("sector at %d after reopen", at).isEqualTo(7);
        }
    }

    @Test
    void closeIsBoundedByItsTimeoutWhenARequestNeverEnds() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(new GateEngine(
                new MemoryEngine(BACKING_SIZE), 1), CacheHarness.quietOptions())) {
            CompletableFuture<Void> stuck = harness.cache.readAsync(0, MemorySegment.ofArray(new byte[4096]));

            Throwable left = catchThrowable(() -> harness.cache.close(Duration.ofMillis(50)));

            assertThat(left).isInstanceOf(CacheCloseException.class).hasMessageContaining("1 request");
            ((GateEngine) harness.engine).open();
            assertThat(catchThrowable(stuck::join)).as("a request that ends after close fails")
                    .hasCauseInstanceOf(CacheClosedException.class);
        }
    }

    @Test
    void closeIsBoundedByItsTimeoutWhenWritebackWaitsForTheBackingDevice() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(BACKING_SIZE), 1);
        CacheOptions options = CacheHarness.quietOptions().withWritebackTimeout(Duration.ofHours(1));
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE), gate,
                options)) {
            Throwable left;
            long closeMillis;
            try {
                harness.writePattern(0, 4096, 1, Durability.FUA);
                assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).as("writeback's write is held").isTrue();

                CompletableFuture<Throwable> closed = CompletableFuture.supplyAsync(
                        () -> catchThrowable(() -> harness.cache.close(Duration.ofMillis(200))));
                long started = System.nanoTime();
                left = closed.get(10, TimeUnit.SECONDS);
                closeMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            } finally {
                gate.open();
            }
            assertThat(closeMillis).as("close(200 ms) took").isLessThan(5_000);
            assertThat(left).isInstanceOf(CacheCloseException.class).hasMessageContaining("pcache-writeback");
            assertThat(CacheHarness.threadsStillAlive(Set.of(), Duration.ofSeconds(10)))
                    .as("the stalled writeback ends once its write completes").doesNotContain("pcache-writeback");

            harness.openAgain();
            assertThat(harness.readIds(0, 4096)).as("the acknowledged write after reopen").containsOnly(1L);
        }
    }
}
