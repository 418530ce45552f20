package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.CacheDevice;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * A full cache (512 MiB region, nothing written back yet) makes a write wait instead of failing it; reads and flushes
 * still complete; closing the cache fails the waiting write with an IOException and leaves no thread behind.
 */
class PcacheCacheFullTest {

    private static final long BACKING_SIZE = 128L << 20;
    /** Writes cycle over the first half of the backing device; the second half is never written. */
    private static final long WRITTEN_SIZE = 64L << 20;
    private static final int WRITE_LEN = 4 << 20;

    @Test
    void fullCacheMakesWritesWaitAndCloseFailsThemWithoutLeavingThreads() throws Exception {
        Set<Thread> before = CacheHarness.pcacheThreads();
        CompletableFuture<Void> waiting;
        long accepted = 0;
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            Pcache cache = harness.cache;
            int dataSegments = cache.status().cacheSegs() - 1;
            long id = 0;
            while (true) {
                long deferralsBefore = cache.status().counters().deferred();
                long off = (id * WRITE_LEN) % WRITTEN_SIZE;
                MemorySegment buf = MemorySegment.ofArray(new byte[WRITE_LEN]);
                SectorPattern.fill(buf, off, ++id);
                CompletableFuture<Void> write = cache.writeAsync(off, buf, Durability.BUFFERED);
                if (!write.isDone()) {
                    assertThat(cache.status().counters().deferred()).as("deferrals after write " + id)
                            .isGreaterThan(deferralsBefore);
                    waiting = write;
                    break;
                }
                CacheHarness.await(write);
                accepted += WRITE_LEN;
                assertThat(accepted).as("bytes accepted by a cache of " + dataSegments + " data segments")
                        .isLessThanOrEqualTo((long) dataSegments * CacheDevice.SEGMENT_DATA_SIZE);
            }
            assertThat(accepted).as("the cache used nearly all of its space before making a write wait")
                    .isGreaterThan((long) (dataSegments - 3) * CacheDevice.SEGMENT_DATA_SIZE);
            assertThat(cache.status().counters().waiting()).isEqualTo(1);

            CacheHarness.await(cache.flushAsync());
            assertThat(harness.readIds(WRITTEN_SIZE, 1 << 20)).as("a miss while full").containsOnly(SectorPattern.ZERO);
            long lastOff = ((id - 2) * WRITE_LEN) % WRITTEN_SIZE;
            assertThat(harness.readIds(lastOff, WRITE_LEN)).as("the last accepted write").containsOnly(id - 1);
            assertThat(waiting).as("the waiting write, after a flush and two reads").isNotDone();
            assertThat(cache.status().counters().waiting()).isEqualTo(1);

            cache.close();

            assertThat(waiting).isCompletedExceptionally();
            Throwable failure = catchThrowable(waiting::get);
            assertThat(failure).isInstanceOf(ExecutionException.class);
            assertThat(failure.getCause()).isInstanceOf(IOException.class).hasMessageContaining("closed");
            Set<Thread> backingWorkers = CacheHarness.pcacheThreads();
            backingWorkers.removeIf(thread -> !thread.getName().startsWith("pcache-backing"));
            backingWorkers.addAll(before);
            assertThat(CacheHarness.threadsStillAlive(backingWorkers, Duration.ofSeconds(10)))
                    .as("cache threads after close").isEmpty();
        }
        assertThat(CacheHarness.threadsStillAlive(before, Duration.ofSeconds(10))).as("threads after the harness")
                .isEmpty();
    }
}
