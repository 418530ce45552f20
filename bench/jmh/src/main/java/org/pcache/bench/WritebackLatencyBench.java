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
import org.pcache.backing.IoEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Durability;

/**
 * Foreground 4 KiB random write latency (QD1, SampleTime) with and without writeback at work. Every iteration opens
 * a cache on a fresh region (every page touched first) in front of a fresh sparse file on the disk:
 * <ul>
 *   <li>{@code writeback=off}: the backing engine refuses writes ({@link WriteFailingEngine}), so writeback fails its
 *       first kset and sits in its retry back-off: the cache with writeback idle, the baseline;</li>
 *   <li>{@code writeback=own}: a {@link FileEngine} (buffered) and an empty region: writeback handles the benchmark's
 *       own ksets as they close;</li>
 *   <li>{@code writeback=backlog}: a {@link FileEngine} and a copy of a {@link DirtyImage} holding 400 MiB of dirty
 *       4 KiB random writes, so writeback (its thread, the 16 I/O threads and the kernel's page-cache writeback) runs
 *       flat out during the whole iteration.</li>
 * </ul> The writer outruns writeback of random 4 KiB blocks several times over, so iterations are short and the
 * region large, or the region would fill and the writes wait (an iteration that deferred a write fails).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 3, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 10, time = 200, timeUnit = TimeUnit.MILLISECONDS)
public class WritebackLatencyBench {

    static final long DEVICE_BYTES = 1L << 30;
    /** Room for the 400 MiB backlog and what a flat-out QD1 writer adds in a 200 ms iteration (up to ~0.5 GB). */
    static final long REGION_BYTES = 2L << 30;
    static final int BLOCK = 4096;

    @Param({"off", "own", "backlog"})
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
        if (!writeback.equals("off") && !writeback.equals("own") && !writeback.equals("backlog")) {
            throw new IllegalArgumentException("writeback=" + writeback + " (expected: off, own or backlog)");
        }
        options = CacheOptions.defaults();
        block = arena.allocate(BLOCK, BLOCK);
        block.fill((byte) 0x6B);
        if (writeback.equals("backlog")) {
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
        IoEngine engine = writeback.equals("off") ? new WriteFailingEngine(DEVICE_BYTES)
                : FileEngine.open(backingFile, FileEngine.Options.DEFAULT);
        bench = BenchCache.openTouched(regionFile, REGION_BYTES, engine, options);
    }

    @TearDown(Level.Iteration)
    public void closeCache() throws IOException {
        CacheStatus status = bench.cache.status();
        backlogLeftSum += status.writeback().dirtyBytes();
        iterations++;
        bench.close();
        Files.deleteIfExists(backingFile);
        if (status.counters().deferred() > 0) {
            throw new IllegalStateException("the region filled up: " + status.statusLine());
        }
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
