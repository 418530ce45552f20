package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
import org.pcache.backing.MemoryEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.MappedPmemRegion;

/**
 * What the export and timing every NBD command cost: a 4 KiB read hit and a 4 KiB write through {@link PcacheExport},
 * timed into {@link RequestStatistics} as a server connection times it ({@code path=export}: two clock reads and an
 * HdrHistogram record per request), against the same calls straight on the cache ({@code direct}). In package
 * {@code org.pcache.nbd} to record as the connection does.
 *
 * <p>The region is a sparse 512 MiB file under PCACHE_BENCH_SHM (default /dev/shm), the backing device 64 MiB of
 * memory. Reads hit one written block; writes sweep 16 MiB, so writeback and GC run as they do in a server.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
public class PcacheExportBench {
    private static final int BLOCK = 4096;
    private static final long WRITE_WINDOW = 16L << 20;

    @Param({"direct", "export"})
    public String path;

    private Path regionFile;
    private MappedPmemRegion region;
    private BackingDevice backing;
    private Pcache cache;
    private PcacheExport export;
    private final RequestStatistics statistics = new RequestStatistics();
    private Arena arena;
    private MemorySegment block;
    private long writeOffset;

    @Setup(Level.Trial)
    public void open() throws IOException {
        Path base = Path.of(System.getenv().getOrDefault("PCACHE_BENCH_SHM", "/dev/shm"));
        regionFile = Files.createTempFile(base, "pcache-bench-export-", ".img");
        Files.delete(regionFile);
        region = MappedPmemRegion.open(regionFile, CacheDeviceLayout.MIN_SIZE);
        backing = BackingDevice.start(new MemoryEngine(64L << 20));
        cache = Pcache.open(region, backing, CacheOptions.defaults());
        export = new PcacheExport(cache, "", "bench");
        arena = Arena.ofShared();
        block = arena.allocate(BLOCK, BLOCK);
        block.fill((byte) 0x5a);
        cache.write(0, block, org.pcache.cache.Durability.FUA);
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        cache.close();
        export.close();
        backing.stop();
        region.close();
        arena.close();
        Files.deleteIfExists(regionFile);
    }

    @Benchmark
    public void readHit() {
        if ("direct".equals(path)) {
            cache.readAsync(0, block).join();
        } else {
            long start = System.nanoTime();
            export.read(0, block).join();
            statistics.record(NbdCommand.READ, System.nanoTime() - start);
        }
    }

    @Benchmark
    public void write() {
        writeOffset = (writeOffset + BLOCK) % WRITE_WINDOW;
        if ("direct".equals(path)) {
            cache.writeAsync(writeOffset, block, org.pcache.cache.Durability.BUFFERED).join();
        } else {
            long start = System.nanoTime();
            export.write(writeOffset, block, Durability.BUFFERED).join();
            statistics.record(NbdCommand.WRITE, System.nanoTime() - start);
        }
    }
}
