package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.pcache.backing.MemoryEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Durability;

/**
 * 4 KiB random writes through {@code Pcache.write} (blocking, not FUA): QD1 latency on one thread (SampleTime:
 * p50/p99 per write) and throughput on two threads. The region is a tmpfs file ({@link #regionMiB}), the backing
 * device an in-memory {@link MemoryEngine} ({@link #backingMiB}); offsets are uniform over the backing device.
 *
 * <p>{@code fill=empty}: every iteration starts on an empty cache (writeback and GC emptied it, untimed), so the
 * numbers are the write path itself, with writeback of the benchmark's own ksets running alongside, as it would.
 * Iterations must be short enough not to fill the region. {@code fill=steady}: never emptied; once the region is
 * full, writes wait for writeback and GC to free segments, so this measures how fast the cache recycles. Each iteration
 * also prints writes per second of process CPU ({@link CpuMeter}), writeback's CPU included.
 */
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"-Xms2g", "-Xmx2g"})
@Warmup(iterations = 3, time = 300, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 8, time = 300, timeUnit = TimeUnit.MILLISECONDS)
public class CacheWriteBench {

    static final int BLOCK = 4096;

    @Param({"4096"})
    public int regionMiB;

    @Param({"1024"})
    public int backingMiB;

    @Param({"empty"})
    public String fill;

    @Param({"false"})
    public boolean dataCrc;

    private BenchCache bench;
    private final CpuMeter cpu = new CpuMeter();

    @Setup(Level.Trial)
    public void open() throws IOException {
        if (!fill.equals("empty") && !fill.equals("steady")) {
            throw new IllegalArgumentException("fill=" + fill + " (expected: empty or steady)");
        }
        bench = BenchCache.create((long) regionMiB << 20, new MemoryEngine((long) backingMiB << 20),
                CacheOptions.defaults().withDataCrc(dataCrc));
    }

    @Setup(Level.Iteration)
    public void emptyCache() throws IOException {
        if (fill.equals("empty")) {
            bench.empty();
        }
        cpu.start(bench.cache.status().counters().writes());
    }

    @TearDown(Level.Iteration)
    public void stopMeter() {
        cpu.stop(bench.cache.status().counters().writes(), "writes");
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        CacheStatus status = bench.cache.status();
        System.err.println("cache at end: " + status.statusLine() + " writes=" + status.counters().writes()
                + " deferred=" + status.counters().deferred() + " writeback=" + status.writeback());
        bench.close();
    }

    /** One writer thread's source block and offsets. */
    @State(Scope.Thread)
    public static class Writer {
        private final Arena arena = Arena.ofShared();
        MemorySegment block;
        private SplittableRandom random;
        private long blocks;

        @Setup(Level.Trial)
        public void allocate(CacheWriteBench bench) {
            block = arena.allocate(BLOCK, BLOCK);
            block.fill((byte) 0x5A);
            random = new SplittableRandom(Thread.currentThread().threadId());
            blocks = ((long) bench.backingMiB << 20) / BLOCK;
        }

        @TearDown(Level.Trial)
        public void free() {
            arena.close();
        }

        long nextOffset() {
            return random.nextLong(blocks) * BLOCK;
        }
    }

    @Benchmark
    @BenchmarkMode(Mode.SampleTime)
    @OutputTimeUnit(TimeUnit.NANOSECONDS)
    @Threads(1)
    public void writeQd1(Writer writer) throws IOException {
        bench.cache.write(writer.nextOffset(), writer.block, Durability.BUFFERED);
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @Threads(2)
    public void write2Threads(Writer writer) throws IOException {
        bench.cache.write(writer.nextOffset(), writer.block, Durability.BUFFERED);
    }
}
