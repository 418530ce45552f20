package org.pcache.cache;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Closing the cache while writers keep issuing requests: every request ends (completes or fails) within a bounded time,
 * no cache thread survives the close, and after reopening, every write acknowledged before or during the close is there
 * (close writes out every pending key), sector by sector as a register.
 */
class PcacheCloseUnderLoadTest {

    private static final long BACKING_SIZE = 1L << 20;
    private static final long INITIAL = 1L << 40;
    private static final int WRITERS = 4;
    private static final int CYCLES = 25;
    private static final int WRITES_BEFORE_CLOSE = 200;
    private static final Duration BOUND = Duration.ofSeconds(20);

    /** A write issued by a writer; {@code end} is filled in when it completes. */
    private record Issued(long id, long off, int len, long start, CompletableFuture<Long> end) {
    }

    private final AtomicLong clock = new AtomicLong();
    private final AtomicLong nextId = new AtomicLong(1);

    @Test
    void closeWhileWritesRunKeepsEveryAcknowledgedWrite() throws Exception {
        long seed = 1_234;
        SplittableRandom root = new SplittableRandom(seed);
        SectorHistory history = new SectorHistory(BACKING_SIZE, INITIAL);
        ExecutorService pool = Executors.newFixedThreadPool(WRITERS, Thread.ofPlatform().name("test-writer-", 0)
                .factory());
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, INITIAL),
                CacheHarness.quietOptions().withKsetFlushDelay(Duration.ofMillis(1)))) {
            for (int cycle = 0; cycle < CYCLES; cycle++) {
                String where = "seed=" + seed + " cycle=" + cycle;
                Set<Thread> before = CacheHarness.pcacheThreads();
                ConcurrentLinkedQueue<Issued> issued = new ConcurrentLinkedQueue<>();
                CountDownLatch started = new CountDownLatch(WRITES_BEFORE_CLOSE);
                List<Future<?>> writers = new ArrayList<>();
                for (int w = 0; w < WRITERS; w++) {
                    SplittableRandom random = root.split();
                    Pcache cache = harness.cache;
                    writers.add(pool.submit(() -> write(cache, random, issued, started)));
                }
                assertThat(started.await(BOUND.toSeconds(), TimeUnit.SECONDS)).as(where + " writes started").isTrue();

                harness.cache.close();

                for (Future<?> writer : writers) {
                    writer.get(BOUND.toSeconds(), TimeUnit.SECONDS);
                }
                for (Issued write : issued) {
                    history.add(new SectorHistory.Write(write.id(), write.off(), write.len(), write.start(),
                            endOf(write, where)));
                }
                assertThat(CacheHarness.threadsStillAlive(before, Duration.ofSeconds(10))).as(where + " threads")
                        .isEmpty();
                harness.openAgain();
                long[] ids = harness.readIds(0, (int) BACKING_SIZE);
                for (int sector = 0; sector < ids.length; sector++) {
                    String violation = history.violation(sector, ids[sector], SectorHistory.NEVER,
                            SectorHistory.NEVER);
                    if (violation != null) {
                        fail(where + " after reopen, sector at " + sector * 512L + " holds " + ids[sector] + ": "
                                + violation);
                    }
                }
            }
        } finally {
            pool.shutdownNow();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
        }
    }

    /** Issues writes until the cache refuses them because it is closed. */
    private Void write(Pcache cache, SplittableRandom random, ConcurrentLinkedQueue<Issued> issued,
                       CountDownLatch started) {
        while (true) {
            int len = (1 + random.nextInt(32)) * SectorPattern.SECTOR;
            long off = random.nextLong((BACKING_SIZE - len) / SectorPattern.SECTOR + 1) * SectorPattern.SECTOR;
            long id = nextId.getAndIncrement();
            MemorySegment buf = MemorySegment.ofArray(new byte[len]);
            SectorPattern.fill(buf, off, id);
            Durability durability = random.nextInt(5) == 0 ? Durability.FUA : Durability.BUFFERED;
            CompletableFuture<Long> end = new CompletableFuture<>();
            long start = clock.incrementAndGet();
            CompletableFuture<Void> request = cache.writeAsync(off, buf, durability);
            if (request.state() == Future.State.FAILED && request.exceptionNow() instanceof CacheClosedException) {
                return null;
            }
            issued.add(new Issued(id, off, len, start, end));
            request.whenComplete((ignored, error) -> end.complete(error == null ? clock.incrementAndGet()
                    : SectorHistory.NEVER));
            started.countDown();
        }
    }

    /** The tick at which the write completed, NEVER if it failed; fails the test if it never ends. */
    private static long endOf(Issued write, String where) throws InterruptedException {
        try {
            return write.end().get(BOUND.toSeconds(), TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError(where + " write " + write.id() + " never completed after close");
        } catch (ExecutionException e) {
            throw new AssertionError(e.getCause());
        }
    }
}
