package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.FaultyPmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A kset timer whose close throws does not die silently, leaving its keys unwritten while the cache looks healthy: it
 * fails the cache with what went wrong. The log writer here writes to the region directly, so the exception reaches
 * the timer as any unexpected one would.
 */
class KsetTimerFailureTest {

    private static final long BACKING_SIZE = 16L << 20;

    @Test
    void aTimerWhoseCloseThrowsFailsTheCache() throws Exception {
        CrashSimPmemRegion sim = TestRegions.crashSim(CacheDeviceLayout.MIN_SIZE);
        FaultyPmemRegion faulty = new FaultyPmemRegion(sim);
        FailStopRegion failStop = new FailStopRegion(sim);
        ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1);
        try {
            CacheDevice device = CacheDevice.open(sim, CacheDevice.Options.defaults());
            SegmentMap segments = new SegmentMap(device, ranges -> { });
            KeyTree tree = new KeyTree(BACKING_SIZE);
            CachePos head = new Replay(device, segments, tree, BACKING_SIZE, false).run();
            KsetLogWriter log = new KsetLogWriter(faulty, segments, head, 0, 0, 0, () -> { });
            Ksets ksets = new Ksets(new Kset[] {new Kset(log, failStop, timer, TimeUnit.MILLISECONDS.toNanos(1))});
            CacheWrite writes = new CacheWrite(sim, tree, new DataHeads(segments, 1), ksets, segments,
                    new DeferredRequests(timer), () -> { }, () -> { }, false);
            faulty.failDrain("flushByTimer", new IllegalStateException("a bug in the close"));

            CompletableFuture<Void> written = new CompletableFuture<>();
            writes.write(0, MemorySegment.ofArray(new byte[4096]), Durability.BUFFERED, written);
            written.join();
            faulty.drainFailed().get(30, TimeUnit.SECONDS);
            timer.shutdown();
            assertThat(timer.awaitTermination(30, TimeUnit.SECONDS)).as("the timer task ended").isTrue();

            assertThat(failStop.health().phase()).isEqualTo(CacheHealth.Phase.FAILED);
            assertThat(failStop.health().cause()).contains("kset timer").contains("a bug in the close");
            assertThat(ksets.pendingKeys()).as("the key the timer could not write").isEqualTo(1);
        } finally {
            timer.shutdownNow();
            sim.close();
        }
    }
}
