package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.pcache.backing.EngineOp;
import org.pcache.backing.LatencyEngine;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

/**
 * Writers and readers hammer overlapping ranges at once, and a sweeper reads never-written ranges while writes land in
 * them (so miss fills race with writes). Every sector a read returns must be readable as the data of one write that
 * covered it (or the backing device's original content), and per sector the cache must behave as a register: a read
 * never returns a write that had not started when the read ended, nor a write that a later write had superseded before
 * the read started. After quiescence each sector holds a write that nothing superseded (for a sector only one thread
 * wrote, that thread's last write), and a reopen brings back exactly the same content. With gc_percent 0, writeback and
 * GC reclaim segments while the load runs, so reads also race stale keys and reads of reclaimed ranges.
 *
 * <p>Time is a shared counter ticked before each request is issued and after it completed, so every "before" the check
 * relies on is real: the check can only report true violations.
 */
class PcacheConcurrencyTest {

    private static final long BACKING_SIZE = 24L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    /** The id of the backing device's original content. */
    private static final long INITIAL = 1L << 40;
    /** Overlapping writes and reads, across the 4 MiB stretch boundary. */
    private static final long HOT_START = (4L << 20) - (256 << 10);
    private static final long HOT_SIZE = 512 << 10;
    /** Never touched before the sweeper reaches it. */
    private static final long FRESH_START = 8L << 20;
    private static final long FRESH_SIZE = 8L << 20;
    /**
     * Rewritten in 1 MiB writes by the churn writer, so that more data than the cache holds passes through it and GC
     * hands reclaimed segments out again while reads run (a stale key then points at someone else's data).
     */
    private static final long CHURN_START = 16L << 20;
    private static final long CHURN_SIZE = 8L << 20;
    private static final int CHURN_LEN = 1 << 20;
    private static final int CHURN_WRITES = 600;
    private static final int SWEEP_READ = 32 << 10;
    private static final int SWEEP_STEP = 8 << 10;
    /** Writes into the fresh zone per sweeper step. */
    private static final int SWEEP_PACE = 6;
    private static final int WRITERS = 4;
    private static final int READERS = 2;
    private static final int WRITES_PER_WRITER = 5000;
    private static final int MAX_READS_PER_READER = 20_000;
    private static final long ID_STRIDE = 1_000_000;
    private static final Duration RUN_TIMEOUT = Duration.ofSeconds(60);

    /** A completed read and the write id it found in each sector. */
    private record Read(String reader, long off, long[] ids, long start, long end) {
    }

    private final AtomicLong clock = new AtomicLong();

    @ParameterizedTest(name = "seed={0} gc_percent={1}")
    @CsvSource({"5, 70", "8, 0"})
    void overlappingWritesAndReadsBehaveAsAPerSectorRegister(long seed, int gcPercent) throws Exception {
        LatencyEngine backing = new LatencyEngine(CacheHarness.patternedMemory(BACKING_SIZE, INITIAL))
                .delayRandom(EngineOp.READ, Duration.ZERO, Duration.ofNanos(200_000), seed);
        CacheOptions options = CacheHarness.quietOptions().withKsetFlushDelay(Duration.ofMillis(2))
                .withGcPercent(gcPercent);
        try (CacheHarness harness = CacheHarness.mapped(backing, options)) {
            List<List<SectorHistory.Write>> writes = new ArrayList<>();
            List<List<Read>> reads = new ArrayList<>();
            run(harness, seed, writes, reads);

            SectorHistory history = new SectorHistory(BACKING_SIZE, INITIAL);
            writes.forEach(writerLog -> writerLog.forEach(history::add));
            int checked = 0;
            for (List<Read> readerReads : reads) {
                for (Read read : readerReads) {
                    checkRead(read, history, "seed=" + seed + " " + read.reader());
                    checked += read.ids().length;
                }
            }
            assertThat(checked).as("seed=" + seed + " sectors checked").isGreaterThan(20_000);
            CacheStatus.Counters counters = harness.cache.status().counters();
            assertThat(counters.missFills()).as("seed=" + seed + " miss fills").isGreaterThan(0);
            assertThat(reads.getLast()).as("seed=" + seed + " sweeper reads").isNotEmpty();
            if (gcPercent == 0) {
                assertThat(harness.cache.status().gc().ksetsReclaimed()).as("seed=" + seed + " ksets GC reclaimed")
                        .isGreaterThan(0);
            }
            long[] finalIds = harness.readIds(0, (int) BACKING_SIZE);
            checkFinal(finalIds, history, "seed=" + seed);
            CacheHarness.await(harness.cache.flushAsync());
            harness.reopen();
            assertThat(harness.readIds(0, (int) BACKING_SIZE)).as("seed=" + seed + " after reopen")
                    .containsExactly(finalIds);
        }
    }

    private void run(CacheHarness harness, long seed, List<List<SectorHistory.Write>> writes, List<List<Read>> reads)
            throws Exception {
        SplittableRandom root = new SplittableRandom(seed);
        AtomicBoolean writersDone = new AtomicBoolean();
        AtomicLong sweepPos = new AtomicLong(FRESH_START);
        Semaphore freshWrites = new Semaphore(0);
        ExecutorService pool = Executors.newFixedThreadPool(WRITERS + READERS + 2,
                Thread.ofPlatform().name("test-load-", 0).factory());
        try {
            List<Future<?>> writers = new ArrayList<>();
            for (int w = 0; w < WRITERS; w++) {
                List<SectorHistory.Write> log = new ArrayList<>();
                writes.add(log);
                SplittableRandom random = root.split();
                long firstId = (w + 1) * ID_STRIDE;
                writers.add(pool.submit(() -> write(harness, random, firstId, sweepPos, freshWrites, log)));
            }
            List<SectorHistory.Write> churned = new ArrayList<>();
            writes.add(churned);
            SplittableRandom churnRandom = root.split();
            writers.add(pool.submit(() -> churn(harness, churnRandom, (WRITERS + 1) * ID_STRIDE, churned)));
            List<Future<?>> readers = new ArrayList<>();
            for (int r = 0; r < READERS; r++) {
                List<Read> log = new ArrayList<>();
                reads.add(log);
                SplittableRandom random = root.split();
                String name = "reader " + r;
                readers.add(pool.submit(() -> read(harness, random, name, writersDone, log)));
            }
            List<Read> swept = new ArrayList<>();
            reads.add(swept);
            readers.add(pool.submit(() -> sweep(harness, sweepPos, freshWrites, swept)));
            long deadline = System.nanoTime() + RUN_TIMEOUT.toNanos();
            awaitAll(writers, deadline, "seed=" + seed + " writers");
            writersDone.set(true);
            freshWrites.release(SWEEP_PACE * (int) (FRESH_SIZE / SWEEP_STEP));
            awaitAll(readers, deadline, "seed=" + seed + " readers");
        } finally {
            pool.shutdownNow();
            assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).as("load threads ended").isTrue();
        }
    }

    private static void awaitAll(List<Future<?>> futures, long deadline, String what) throws InterruptedException {
        for (Future<?> future : futures) {
            try {
                future.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException e) {
                throw new AssertionError(what + " failed", e.getCause());
            } catch (TimeoutException e) {
                fail(what + " did not finish within " + RUN_TIMEOUT);
            }
        }
    }

    /** Writes to the hot zone, and just ahead of the sweeper in the fresh zone; flushes now and then. */
    private Void write(CacheHarness harness, SplittableRandom random, long firstId, AtomicLong sweepPos,
                       Semaphore freshWrites, List<SectorHistory.Write> log) throws IOException {
        for (int i = 0; i < WRITES_PER_WRITER; i++) {
            int dice = random.nextInt(100);
            if (dice < 4) {
                CacheHarness.await(harness.cache.flushAsync());
                continue;
            }
            int len;
            long off;
            if (dice < 64) {
                len = (1 + random.nextInt(32)) * SECTOR;
                off = HOT_START + random.nextLong((HOT_SIZE - len) / SECTOR + 1) * SECTOR;
            } else {
                len = (1 + random.nextInt(16)) * SECTOR;
                long from = Math.min(sweepPos.get(), FRESH_START + FRESH_SIZE - (64 << 10));
                off = from + random.nextLong((64 << 10) / SECTOR) * SECTOR;
                len = (int) Math.min(len, FRESH_START + FRESH_SIZE - off);
            }
            long id = firstId + log.size();
            Durability durability = random.nextInt(5) == 0 ? Durability.FUA : Durability.BUFFERED;
            long start = clock.incrementAndGet();
            harness.writePattern(off, len, id, durability);
            long end = clock.incrementAndGet();
            log.add(new SectorHistory.Write(id, off, len, start, end));
            if (off >= FRESH_START) {
                freshWrites.release();
            }
        }
        return null;
    }

    /** Rewrites the churn zone in 1 MiB writes. */
    private Void churn(CacheHarness harness, SplittableRandom random, long firstId, List<SectorHistory.Write> log)
            throws IOException {
        for (int i = 0; i < CHURN_WRITES; i++) {
            long off = CHURN_START + random.nextLong((CHURN_SIZE - CHURN_LEN) / SECTOR + 1) * SECTOR;
            long id = firstId + log.size();
            long start = clock.incrementAndGet();
            harness.writePattern(off, CHURN_LEN, id, Durability.BUFFERED);
            long end = clock.incrementAndGet();
            log.add(new SectorHistory.Write(id, off, CHURN_LEN, start, end));
        }
        return null;
    }

    /** Reads random ranges of the hot, fresh and churn zones until the writers are done. */
    private Void read(CacheHarness harness, SplittableRandom random, String name, AtomicBoolean writersDone,
                      List<Read> log) throws IOException {
        while (!writersDone.get() && log.size() < MAX_READS_PER_READER) {
            int len = (1 + random.nextInt(128)) * SECTOR;
            long off = switch (random.nextInt(3)) {
                case 0 -> HOT_START - (16 << 10) + random.nextLong((HOT_SIZE + (32 << 10) - len) / SECTOR) * SECTOR;
                case 1 -> FRESH_START + random.nextLong((FRESH_SIZE - len) / SECTOR) * SECTOR;
                default -> CHURN_START + random.nextLong((CHURN_SIZE - len) / SECTOR) * SECTOR;
            };
            log.add(timedRead(harness, name, off, len));
        }
        return null;
    }

    /**
     * Reads the fresh zone front to back, once, in overlapping reads whose last part was never read, each step paced by
     * {@link #SWEEP_PACE} writes into the fresh zone so that it races them to the end.
     */
    private Void sweep(CacheHarness harness, AtomicLong sweepPos, Semaphore freshWrites, List<Read> log)
            throws IOException, InterruptedException {
        for (long off = FRESH_START; off + SWEEP_READ <= FRESH_START + FRESH_SIZE; off += SWEEP_STEP) {
            if (!freshWrites.tryAcquire(SWEEP_PACE, 10, TimeUnit.SECONDS)) {
                return null;
            }
            log.add(timedRead(harness, "sweeper", off, SWEEP_READ));
            sweepPos.set(off + SWEEP_READ - SWEEP_STEP);
        }
        return null;
    }

    private Read timedRead(CacheHarness harness, String name, long off, int len) throws IOException {
        long start = clock.incrementAndGet();
        long[] ids = harness.readIds(off, len);
        long end = clock.incrementAndGet();
        return new Read(name, off, ids, start, end);
    }

    private static void checkRead(Read read, SectorHistory history, String where) {
        for (int i = 0; i < read.ids().length; i++) {
            long sector = read.off() / SECTOR + i;
            String violation = history.violation(sector, read.ids()[i], read.start(), read.end());
            if (violation != null) {
                fail(where + " read " + read.off() + "+" + read.ids().length * SECTOR + " [" + read.start() + ", "
                        + read.end() + "] sector at " + sector * SECTOR + " holds " + read.ids()[i] + ": " + violation);
            }
        }
    }

    /**
     * After quiescence each sector holds a write nothing superseded, which for a sector written by one thread only is
     * that thread's last write.
     */
    private static void checkFinal(long[] ids, SectorHistory history, String where) {
        for (int sector = 0; sector < history.sectors(); sector++) {
            String what = where + " final sector at " + (long) sector * SECTOR + " holds " + ids[sector];
            String violation = history.violation(sector, ids[sector], SectorHistory.NEVER, SectorHistory.NEVER);
            if (violation != null) {
                fail(what + ": " + violation);
            }
            List<SectorHistory.Write> covering = history.covering(sector);
            if (!covering.isEmpty() && covering.stream().map(w -> w.id() / ID_STRIDE).distinct().count() == 1) {
                assertThat(ids[sector]).as(what + ": the only writer's last write").isEqualTo(covering.getLast().id());
            }
        }
    }
}
