package org.pcache.bench;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
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
import org.pcache.backing.BackingDevice;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.pmem.MappedPmemRegion;

/**
 * Replay speed: {@code Pcache.open} of an image holding {@link #keys} live 512-byte extents ({@link SmallKeyImage}),
 * one open per iteration; keys/s = keys / score. The time covers everything open does (superblock, cache_info,
 * segment generations, the log walk with every hardening check, index and bitmap rebuild, starting the workers).
 * Each iteration also prints the CPU time the opening thread used, which a shared machine's load does not inflate
 * the way it does the wall time: replay runs on that one thread.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms3g", "-Xmx3g"})
@Warmup(iterations = 2)
@Measurement(iterations = 5)
public class ReplayBench {

    @Param({"1000000"})
    public int keys;

    @Param({"false"})
    public boolean dataCrc;

    private Path regionFile;
    private MappedPmemRegion region;
    private BackingDevice backing;
    private CacheOptions options;
    private Pcache cache;
    private long cpuNanos;
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();

    @Setup(Level.Trial)
    public void build() throws IOException {
        options = CacheOptions.defaults().withDataCrc(dataCrc);
        long regionBytes = regionBytes(keys);
        regionFile = SmallKeyImage.build(BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-replay-"), regionBytes,
                keys, options, 42);
        region = MappedPmemRegion.open(regionFile, regionBytes);
        backing = BackingDevice.start(new DiscardEngine(SmallKeyImage.backingSize(keys)));
    }

    /** Room for the data (512 B per key) and the log (40 B per key) below the default GC threshold. */
    static long regionBytes(int keys) {
        long needed = (long) keys * (SmallKeyImage.KEY_BYTES + 64);
        long gib = 1L << 30;
        return Math.max(gib, (needed * 2 + gib - 1) / gib * gib);
    }

    @Benchmark
    public Pcache open() throws IOException {
        long cpuStart = threads.getCurrentThreadCpuTime();
        cache = Pcache.open(region, backing, options);
        cpuNanos = threads.getCurrentThreadCpuTime() - cpuStart;
        return cache;
    }

    @TearDown(Level.Iteration)
    public void closeCache() {
        cache.close();
        System.err.printf("open used %d ms of CPU: %.2f M keys per CPU second%n", cpuNanos / 1_000_000,
                keys * 1e3 / cpuNanos);
    }

    @TearDown(Level.Trial)
    public void delete() throws IOException {
        backing.stop();
        region.close();
        Files.deleteIfExists(regionFile);
    }
}
