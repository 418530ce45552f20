package org.pcache.cache;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * A cache opened with the options a 64-CPU machine gets by default (64 data heads, 64 kset streams) on the smallest
 * region (512 MiB, fewer data segments than heads) keeps accepting writes: 64 writer threads, one per head, write
 * random 64 KiB blocks, twice the cache size in all, and every write completes. Each writer owns its own blocks, so
 * afterwards every block holds its writer's last write.
 */
class PcacheManyHeadsTest {

    private static final int CPUS = 64;
    private static final long BACKING_SIZE = 256L << 20;
    private static final int BLOCK = 64 << 10;
    private static final int BLOCKS_PER_WRITER = (int) (BACKING_SIZE / BLOCK / CPUS);
    private static final int WRITES_PER_WRITER = (int) (2 * CacheHarness.CACHE_SIZE / BLOCK / CPUS);
    private static final long SEED = 13;
    private static final Duration RUN_TIMEOUT = Duration.ofSeconds(120);

    @Test
    void writesKeepCompletingWithMoreDataHeadsThanDataSegments() throws Exception {
        System.out.println("seed=" + SEED);
        CacheOptions options = CacheOptions.defaults().withKsetCount(CPUS).withDataHeadCount(CPUS);
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, options)) {
            assertThat(harness.cache.status().cacheSegs()).as("data segments").isLessThan(CPUS);
            long[][] lastIds = assertTimeoutPreemptively(RUN_TIMEOUT, () -> writeAll(harness),
                    "random writes of twice the cache size with " + CPUS + " data heads (seed " + SEED + ")");

            for (int writer = 0; writer < CPUS; writer++) {
                for (int block = 0; block < BLOCKS_PER_WRITER; block++) {
                    long off = offset(writer, block);
                    assertThat(harness.readIds(off, BLOCK)).as("block at " + off + " (seed " + SEED + ")")
                            .containsOnly(lastIds[writer][block]);
                }
            }
            assertThat(harness.cache.status().gc().ksetsReclaimed()).as("GC reclaimed").isPositive();
        }
    }

    /** Runs the writers; returns, per writer and block, the id of the last write to it (0: never written). */
    private static long[][] writeAll(CacheHarness harness) throws Exception {
        long[][] lastIds = new long[CPUS][BLOCKS_PER_WRITER];
        try (ExecutorService pool = Executors.newFixedThreadPool(CPUS)) {
            List<Future<?>> writers = new ArrayList<>();
            for (int writer = 0; writer < CPUS; writer++) {
                int w = writer;
                SplittableRandom random = new SplittableRandom(SEED * 1000 + writer);
                writers.add(pool.submit((Callable<Void>) () -> {
                    for (int i = 0; i < WRITES_PER_WRITER; i++) {
                        int block = random.nextInt(BLOCKS_PER_WRITER);
                        long id = (long) w * WRITES_PER_WRITER + i + 1;
                        harness.writePattern(offset(w, block), BLOCK, id, Durability.BUFFERED);
                        lastIds[w][block] = id;
                    }
                    return null;
                }));
            }
            for (Future<?> writer : writers) {
                writer.get();
            }
        }
        return lastIds;
    }

    private static long offset(int writer, int block) {
        return ((long) block * CPUS + writer) * BLOCK;
    }
}
