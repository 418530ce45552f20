package org.pcache.cache;

import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/**
 * A cache on a region and an in-memory backing device, for tests: opens, closes and reopens the cache on the same
 * media, and reads back what it holds.
 */
final class CacheHarness implements AutoCloseable {

    static final long CACHE_SIZE = CacheDeviceLayout.MIN_SIZE;
    static final Duration TIMEOUT = Duration.ofSeconds(30);

    PmemRegion region;
    final IoEngine engine;
    final BackingDevice backing;
    final CacheOptions options;
    private Path regionFile;
    Pcache cache;

    private CacheHarness(PmemRegion region, Path regionFile, IoEngine engine, CacheOptions options)
            throws IOException {
        this.region = region;
        this.regionFile = regionFile;
        this.engine = engine;
        this.backing = BackingDevice.start(engine);
        this.options = options;
        this.cache = Pcache.open(region, backing, options);
    }

    /** A cache on a sparse tmpfs-mapped region in front of an in-memory backing device of {@code backingSize}. */
    static CacheHarness mapped(long backingSize, CacheOptions options) throws IOException {
        return mapped(new MemoryEngine(backingSize), options);
    }

    /** A cache on a sparse tmpfs-mapped region in front of {@code engine}. */
    static CacheHarness mapped(IoEngine engine, CacheOptions options) throws IOException {
        Path file = newRegionFile();
        return new CacheHarness(TestRegions.mapped(file, CACHE_SIZE), file, engine, options);
    }

    private static Path newRegionFile() throws IOException {
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-test-", ".img");
        Files.delete(file);
        return file;
    }

    /** A cache on {@code region} in front of {@code engine}. */
    static CacheHarness on(PmemRegion region, IoEngine engine, CacheOptions options) throws IOException {
        return new CacheHarness(region, null, engine, options);
    }

    /**
     * An in-memory backing device of {@code size} bytes whose every sector holds write {@code id}'s pattern, so data
     * read from the backing device is told apart from zeroes and from data written through the cache.
     */
    static MemoryEngine patternedMemory(long size, long id) {
        MemoryEngine engine = new MemoryEngine(size);
        int chunk = (int) Math.min(size, 1 << 20);
        MemorySegment buf = MemorySegment.ofArray(new byte[chunk]);
        for (long off = 0; off < size; off += chunk) {
            SectorPattern.fill(buf, off, id);
            engine.write(off, buf, error -> {
                if (error != null) {
                    throw new UncheckedIOException(error);
                }
            });
        }
        return engine;
    }

    /** Options for deterministic tests: kset timers far away, so only the workload decides when ksets close. */
    static CacheOptions quietOptions() {
        return CacheOptions.defaults().withKsetCount(2).withDataHeadCount(2).withKsetFlushDelay(Duration.ofHours(1));
    }

    /** Closes the cache and opens it again on the same media. */
    Pcache reopen() throws IOException {
        cache.close();
        cache = Pcache.open(region, backing, options);
        return cache;
    }

    /** Closes the cache and opens a new one on a blank region in front of the same backing device. */
    Pcache reformat() throws IOException {
        cache.close();
        closeRegion();
        regionFile = newRegionFile();
        region = TestRegions.mapped(regionFile, CACHE_SIZE);
        cache = Pcache.open(region, backing, options);
        return cache;
    }

    /** Opens the cache again after the previous instance was closed elsewhere (e.g. before a power cut). */
    Pcache openAgain() throws IOException {
        cache = Pcache.open(region, backing, options);
        return cache;
    }

    /** Writes write {@code id}'s pattern to {@code [offset, offset + length)}. */
    void writePattern(long offset, int length, long id, Durability durability) throws IOException {
        MemorySegment buf = MemorySegment.ofArray(new byte[length]);
        SectorPattern.fill(buf, offset, id);
        await(cache.writeAsync(offset, buf, durability));
    }

    /** Reads {@code [offset, offset + length)} through the cache and returns the write id of every sector. */
    long[] readIds(long offset, int length) throws IOException {
        MemorySegment buf = MemorySegment.ofArray(new byte[length]);
        await(cache.readAsync(offset, buf));
        long[] ids = new long[length / SectorPattern.SECTOR];
        for (int i = 0; i < ids.length; i++) {
            long at = (long) i * SectorPattern.SECTOR;
            ids[i] = SectorPattern.idOf(buf, at, offset + at);
        }
        return ids;
    }

    /** Waits for {@code request}, at most {@link #TIMEOUT}: a request that never completes fails the test. */
    static void await(CompletableFuture<Void> request) throws IOException {
        try {
            request.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw new AssertionError("request failed", e.getCause());
        } catch (InterruptedException | TimeoutException e) {
            throw new AssertionError("request did not complete within " + TIMEOUT, e);
        }
    }

    /** Waits until every miss fill of the reads completed so far landed (or was dropped), at most {@link #TIMEOUT}. */
    void awaitMissFills() throws InterruptedException {
        if (!cache.awaitMissFills(TIMEOUT)) {
            throw new AssertionError("miss fills still waiting after " + TIMEOUT);
        }
    }

    /** Waits until the cache's status satisfies {@code condition}, polling, at most {@link #TIMEOUT}. */
    CacheStatus awaitStatus(String what, Predicate<CacheStatus> condition) {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        CacheStatus status = cache.status();
        while (!condition.test(status)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("status never showed " + what + " within " + TIMEOUT + "; last: " + status);
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(2));
            status = cache.status();
        }
        return status;
    }

    /** The live threads whose name starts with {@code pcache}: the cache's and the backing device's workers. */
    static Set<Thread> pcacheThreads() {
        Set<Thread> threads = new HashSet<>(Thread.getAllStackTraces().keySet());
        threads.removeIf(thread -> !thread.isAlive() || !thread.getName().startsWith("pcache"));
        return threads;
    }

    /**
     * Waits, at most {@code timeout} in all, for every pcache thread not in {@code before} to end; returns the names of
     * those still alive.
     */
    static List<String> threadsStillAlive(Set<Thread> before, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        List<String> alive = new ArrayList<>();
        for (Thread thread : pcacheThreads()) {
            if (before.contains(thread)) {
                continue;
            }
            thread.join(Duration.ofNanos(Math.max(1, deadline - System.nanoTime())));
            if (thread.isAlive()) {
                alive.add(thread.getName());
            }
        }
        return alive;
    }

    @Override
    public void close() {
        cache.close();
        backing.stop();
        closeRegion();
    }

    private void closeRegion() {
        region.close();
        if (regionFile != null) {
            try {
                Files.deleteIfExists(regionFile);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
