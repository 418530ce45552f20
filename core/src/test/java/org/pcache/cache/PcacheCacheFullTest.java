package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * A full cache (512 MiB region) makes a write wait instead of failing it; reads and flushes still complete; closing the
 * cache fails the waiting write with an IOException and leaves no thread behind; and once writeback can reach the
 * backing device again, GC frees space and the waiting write completes.
 *
 * <p>The backing device fails every write until the test clears the fault, so nothing is written back and nothing can
 * be reclaimed: the cache stays full for as long as the test needs.
 */
class PcacheCacheFullTest {

    private static final long BACKING_SIZE = 128L << 20;
    /** Writes cycle over the first half of the backing device; the second half is never written. */
    private static final long WRITTEN_SIZE = 64L << 20;
    private static final int WRITE_LEN = 4 << 20;
    /** The part of each write that carries its id (the rest is zeroes): enough to tell writes apart, cheap to fill. */
    private static final int TAGGED_LEN = 64 << 10;

    @Test
    void fullCacheMakesWritesWaitAndCloseFailsThemWithoutLeavingThreads() throws Exception {
        Set<Thread> before = CacheHarness.pcacheThreads();
        try (CacheHarness harness = CacheHarness.mapped(noWriteback(), CacheHarness.quietOptions())) {
            Pcache cache = harness.cache;
            Full full = fill(cache);

            CacheHarness.await(cache.flushAsync());
            assertThat(harness.readIds(WRITTEN_SIZE, 1 << 20)).as("a miss while full").containsOnly(SectorPattern.ZERO);
            long lastOff = ((full.id() - 2) * WRITE_LEN) % WRITTEN_SIZE;
            assertThat(harness.readIds(lastOff, TAGGED_LEN)).as("the last accepted write").containsOnly(full.id() - 1);
            assertThat(full.waiting()).as("the waiting write, after a flush and two reads").isNotDone();
            assertThat(cache.status().counters().waiting()).isEqualTo(1);

            cache.close();

            assertThat(full.waiting()).isCompletedExceptionally();
            Throwable failure = catchThrowable(full.waiting()::get);
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

    @Test
    void waitingWriteCompletesOnceWritebackAndGcFreeSpace() throws Exception {
        FaultEngine backing = noWriteback();
        try (CacheHarness harness = CacheHarness.mapped(backing, CacheHarness.quietOptions())) {
            Full full = fill(harness.cache);
            assertThat(full.waiting()).isNotDone();

            backing.clear();
            CacheHarness.await(full.waiting());

            long off = ((full.id() - 1) * WRITE_LEN) % WRITTEN_SIZE;
            assertThat(harness.readIds(off, TAGGED_LEN)).as("the write that waited").containsOnly(full.id());
            assertThat(harness.cache.status().keyTail()).as("GC moved key_tail").isNotEqualTo(new CachePos(0, 0));
            harness.writePattern(WRITTEN_SIZE, WRITE_LEN, full.id() + 1, Durability.FUA);
            assertThat(harness.readIds(WRITTEN_SIZE, WRITE_LEN)).containsOnly(full.id() + 1);
        }
    }

    /** The cache once full: the write that waits, and its id (earlier writes have ids 1 .. id - 1). */
    private record Full(CompletableFuture<Void> waiting, long id) {
    }

    /**
     * Writes 4 MiB requests cycling over {@link #WRITTEN_SIZE} until one does not complete at once; checks that it
     * waits because the cache is full, after nearly all of the cache was used.
     */
    private static Full fill(Pcache cache) {
        int dataSegments = cache.status().cacheSegs() - 1;
        long accepted = 0;
        long id = 0;
        while (true) {
            long deferralsBefore = cache.status().counters().deferred();
            long off = (id * WRITE_LEN) % WRITTEN_SIZE;
            MemorySegment buf = MemorySegment.ofArray(new byte[WRITE_LEN]);
            SectorPattern.fill(buf.asSlice(0, TAGGED_LEN), off, ++id);
            CompletableFuture<Void> write = cache.writeAsync(off, buf, Durability.BUFFERED);
            if (!write.isDone()) {
                assertThat(cache.status().counters().deferred()).as("deferrals after write " + id)
                        .isGreaterThan(deferralsBefore);
                assertThat(cache.status().counters().waiting()).isEqualTo(1);
                assertThat(accepted).as("the cache used nearly all of its space before making a write wait")
                        .isGreaterThan((long) (dataSegments - 3) * CacheDeviceLayout.SEGMENT_DATA_SIZE);
                return new Full(write, id);
            }
            assertThat(write).as("write " + id).isCompleted();
            accepted += WRITE_LEN;
            assertThat(accepted).as("bytes accepted by a cache of " + dataSegments + " data segments")
                    .isLessThanOrEqualTo((long) dataSegments * CacheDeviceLayout.SEGMENT_DATA_SIZE);
        }
    }

    /** A backing device whose writes fail until cleared: nothing is written back, so nothing can be reclaimed. */
    private static FaultEngine noWriteback() {
        return new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
    }
}
