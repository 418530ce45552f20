package org.pcache.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import org.pcache.backing.BackingDevice;
import org.pcache.backing.IoEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Pcache;
import org.pcache.pmem.MappedPmemRegion;

/**
 * A cache for a benchmark, opened through the public API on a region file of its own (tmpfs by default) in front of
 * a backing device on {@code engine}; {@link #close} stops everything and deletes the region file.
 */
final class BenchCache implements AutoCloseable {

    private static final long EMPTY_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(120);
    private static final int PAGE_SIZE = 4096;

    final Path regionFile;
    final MappedPmemRegion region;
    final BackingDevice backing;
    final CacheOptions options;
    Pcache cache;

    private BenchCache(Path regionFile, MappedPmemRegion region, BackingDevice backing, CacheOptions options,
                       Pcache cache) {
        this.regionFile = regionFile;
        this.region = region;
        this.backing = backing;
        this.options = options;
        this.cache = cache;
    }

    /** A new cache of {@code regionBytes} on a fresh region file in {@link BenchDirs#shm()}, every page touched. */
    static BenchCache create(long regionBytes, IoEngine engine, CacheOptions options) throws IOException {
        return openTouched(BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-region-"), regionBytes, engine, options);
    }

    /** The cache on {@code regionFile} (formatted when missing, replayed otherwise); the file is deleted at close. */
    static BenchCache open(Path regionFile, long regionBytes, IoEngine engine, CacheOptions options)
            throws IOException {
        return start(regionFile, MappedPmemRegion.open(regionFile, regionBytes), engine, options);
    }

    /**
     * {@link #open}, after touching every page of the mapping, so the measurements do not include tmpfs allocating
     * and zeroing pages, or mapping them, on first touch: a cache that has run for a while has touched its whole
     * region, and real pmem has no such faults. Each page gets one word stored back unchanged (a write fault: a read
     * fault on a hole may map the shared zero page), which keeps an existing image intact.
     */
    static BenchCache openTouched(Path regionFile, long regionBytes, IoEngine engine, CacheOptions options)
            throws IOException {
        MappedPmemRegion region = MappedPmemRegion.open(regionFile, regionBytes);
        for (long offset = 0; offset < regionBytes; offset += PAGE_SIZE) {
            region.putLongRelease(offset, region.getLongAcquire(offset));
        }
        return start(regionFile, region, engine, options);
    }

    private static BenchCache start(Path regionFile, MappedPmemRegion region, IoEngine engine, CacheOptions options)
            throws IOException {
        BackingDevice backing = BackingDevice.start(engine);
        return new BenchCache(regionFile, region, backing, options, Pcache.open(region, backing, options));
    }

    /**
     * Writes everything back and lets GC reclaim it all (gc_percent 0 for the duration), so the next measurement
     * starts on an empty cache. The cache has no completion signal for GC, so this polls its status, bounded.
     */
    void empty() throws IOException {
        int gcPercent = cache.status().gcPercent();
        cache.setGcPercent(0);
        cache.drain();
        long deadline = System.nanoTime() + EMPTY_TIMEOUT_NANOS;
        CacheStatus status = cache.status();
        while (!status.keyTail().equals(status.keyHead())) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("GC did not empty the cache: " + status.statusLine());
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(5));
            status = cache.status();
        }
        cache.setGcPercent(gcPercent);
    }

    @Override
    public void close() throws IOException {
        if (cache != null) {
            cache.close();
        }
        backing.stop();
        region.close();
        Files.deleteIfExists(regionFile);
    }
}
