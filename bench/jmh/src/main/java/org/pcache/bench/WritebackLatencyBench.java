package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.pcache.backing.FileEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Durability;

/**
 * Foreground 4 KiB random write latency (QD1, SampleTime) with and without writeback at work. Every iteration opens
 * a cache on a fresh region in front of a {@link FileEngine} (buffered) on a fresh sparse file on the disk:
 * {@code writeback=idle} starts from an empty region, so writeback only handles the benchmark's own ksets;
 * {@code writeback=busy} starts from a copy of a {@link DirtyImage} holding 400 MiB of dirty 4 KiB random writes,
 * so writeback (its thread, the 16 I/O threads and the kernel's page-cache writeback) runs flat out during the whole
 * iteration. Iterations are short so the region never fills.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 3, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 200, timeUnit = TimeUnit.MILLISECONDS)
public class WritebackLatencyBench {

    static final long DEVICE_BYTES = 1L << 30;
    static final long REGION_BYTES = 1L << 30;
    static final int BLOCK = 4096;

    @Param({"idle", "busy"})
    public String writeback;

    private CacheOptions options;
    private Path golden;
    private Path backingFile;
    private BenchCache bench;
    private long backlogLeftSum;
    private int iterations;

    private final Arena arena = Arena.ofShared();
    private MemorySegment block;
    private final SplittableRandom random = new SplittableRandom(11);

    @Setup(Level.Trial)
    public void buildImage() throws IOException {
        if (!writeback.equals("idle") && !writeback.equals("busy")) {
            throw new IllegalArgumentException("writeback=" + writeback + " (expected: idle or busy)");
        }
        options = CacheOptions.defaults();
        block = arena.allocate(BLOCK, BLOCK);
        block.fill((byte) 0x6B);
        if (writeback.equals("busy")) {
            golden = BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-dirty-");
            DirtyImage.build(golden, REGION_BYTES, DEVICE_BYTES,
                    DirtyImage.Workload.of("rand4k", 400L << 20, DEVICE_BYTES, 5), options);
        }
    }

    @Setup(Level.Iteration)
    public void openCache() throws IOException {
        Path regionFile = BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-lat-region-");
        if (golden != null) {
            Files.copy(golden, regionFile, StandardCopyOption.REPLACE_EXISTING);
        }
        backingFile = BenchDirs.sparseFile(BenchDirs.disk(), "pcache-bench-lat-backing-", DEVICE_BYTES);
        bench = BenchCache.open(regionFile, REGION_BYTES, FileEngine.open(backingFile, FileEngine.Options.DEFAULT),
                options);
    }

    @TearDown(Level.Iteration)
    public void closeCache() throws IOException {
        CacheStatus status = bench.cache.status();
        backlogLeftSum += status.writeback().dirtyBytes();
        iterations++;
        if (status.counters().deferred() > 0) {
            throw new IllegalStateException("the region filled up: " + status.statusLine());
        }
        bench.close();
        Files.deleteIfExists(backingFile);
    }

    @TearDown(Level.Trial)
    public void deleteImage() throws IOException {
        System.err.printf("writeback=%s: dirty bytes left at iteration end, mean %d MiB%n", writeback,
                backlogLeftSum / iterations >> 20);
        arena.close();
        if (golden != null) {
            Files.deleteIfExists(golden);
        }
    }

    @Benchmark
    public void write4k() throws IOException {
        bench.cache.write(random.nextLong(DEVICE_BYTES / BLOCK) * BLOCK, block, Durability.BUFFERED);
    }
}
