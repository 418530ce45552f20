package org.pcache.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;

import org.pcache.backing.BackingDevice;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.pmem.MappedPmemRegion;

/**
 * Heap bytes per cached extent. For N/2 and N non-overlapping extents ({@link SmallKeyImage}) it measures the heap in
 * use (after full GCs) with a cache open on the image minus the heap in use once that cache is closed and unreachable;
 * the cost per extent is the difference between the two, divided by N/2, which cancels the cache's fixed structures
 * (segment and subtree tables, kset buffers, the write-zeroes buffer, threads).
 *
 * <p>Usage: {@code bench/jmh/run --main org.pcache.bench.ExtentHeap [N]} (default 1,000,000); add JVM flags through
 * PCACHE_BENCH_JAVA_OPTS (for example {@code -XX:+UseCompactObjectHeaders}).
 */
public final class ExtentHeap {

    private ExtentHeap() {
    }

    public static void main(String[] args) throws IOException {
        int keys = args.length > 0 ? Integer.parseInt(args[0]) : 1_000_000;
        long half = heapOfOpenCache(keys / 2);
        long full = heapOfOpenCache(keys);
        System.out.printf("heap per extent: %.1f B (marginal between %d and %d extents); all-in at %d: %.1f B%n",
                (double) (full - half) / (keys - keys / 2), keys / 2, keys, keys, (double) full / keys);
    }

    /** Heap held by a cache open on an image of {@code keys} extents. */
    private static long heapOfOpenCache(int keys) throws IOException {
        CacheOptions options = CacheOptions.defaults();
        long regionBytes = ReplayBench.regionBytes(keys);
        Path file = SmallKeyImage.build(BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-heap-"), regionBytes, keys,
                options, 7);
        try (MappedPmemRegion region = MappedPmemRegion.open(file, regionBytes)) {
            BackingDevice backing = BackingDevice.start(new DiscardEngine(SmallKeyImage.backingSize(keys)));
            Pcache cache = Pcache.open(region, backing, options);
            long open = usedAfterGc();
            cache.close();
            cache = null;
            long closed = usedAfterGc();
            backing.stop();
            System.out.printf("extents=%d: heap with the cache open %d B, after close %d B, difference %d B%n", keys,
                    open, closed, open - closed);
            return open - closed;
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static long usedAfterGc() {
        MemoryMXBean memory = ManagementFactory.getMemoryMXBean();
        long used = Long.MAX_VALUE;
        for (int i = 0; i < 4; i++) {
            System.gc();
            used = Math.min(used, memory.getHeapMemoryUsage().getUsed());
        }
        return used;
    }
}
