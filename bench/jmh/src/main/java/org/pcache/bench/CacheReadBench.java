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
 * 4 KiB random read hits through {@code Pcache.read} (blocking): a {@link #rangeMiB} range is written once at setup in
 * {@link #extentKiB} writes, so every read is a full hit copied out of the tmpfs region. With data_crc on, a hit
 * checks the CRC of the whole extent its key's record covers, so the extent size matters there. QD1 latency on one thread, throughput on
 * two. The backing device is an in-memory {@link MemoryEngine} of the same size. Each iteration also prints reads
 * per second of process CPU ({@link CpuMeter}).
 */
@State(Scope.Benchmark)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class CacheReadBench {

    static final int BLOCK = 4096;

    @Param({"64"})
    public int rangeMiB;

    @Param({"false"})
    public boolean dataCrc;

    @Param({"4"})
    public int extentKiB;

    private BenchCache bench;
    private final CpuMeter cpu = new CpuMeter();

    @Setup(Level.Trial)
    public void populate() throws IOException {
        long range = (long) rangeMiB << 20;
        bench = BenchCache.create(1L << 30, new MemoryEngine(range), CacheOptions.defaults().withDataCrc(dataCrc));
        int extent = extentKiB << 10;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(extent, BLOCK);
            for (long offset = 0; offset < range; offset += extent) {
                data.fill((byte) (offset / extent));
                bench.cache.write(offset, data, Durability.BUFFERED);
            }
        }
        bench.cache.flush();
    }

    @Setup(Level.Iteration)
    public void startMeter() {
        cpu.start(bench.cache.status().counters().reads());
    }

    @TearDown(Level.Iteration)
    public void stopMeter() {
        cpu.stop(bench.cache.status().counters().reads(), "reads");
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        CacheStatus.Counters counters = bench.cache.status().counters();
        System.err.println("reads=" + counters.reads() + " full hits=" + counters.readHitsFull() + " misses="
                + counters.readMisses() + " partial=" + counters.readHitsPartial());
        bench.close();
        if (counters.readMisses() + counters.readHitsPartial() > 0) {
            throw new IllegalStateException("a read missed: the numbers are not read hits");
        }
    }

    /** One reader thread's destination block and offsets. */
    @State(Scope.Thread)
    public static class Reader {
        private final Arena arena = Arena.ofShared();
        MemorySegment block;
        private SplittableRandom random;
        private long blocks;

        @Setup(Level.Trial)
        public void allocate(CacheReadBench bench) {
            block = arena.allocate(BLOCK, BLOCK);
            random = new SplittableRandom(Thread.currentThread().threadId());
            blocks = ((long) bench.rangeMiB << 20) / BLOCK;
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
    public MemorySegment readHitQd1(Reader reader) throws IOException {
        bench.cache.read(reader.nextOffset(), reader.block);
        return reader.block;
    }

    @Benchmark
    @BenchmarkMode(Mode.Throughput)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @Threads(2)
    public MemorySegment readHit2Threads(Reader reader) throws IOException {
        bench.cache.read(reader.nextOffset(), reader.block);
        return reader.block;
    }
}
