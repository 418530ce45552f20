package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
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
import org.pcache.backing.MemoryEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;

/**
 * Writeback throughput against the backing file's own bandwidth. A cache holding {@link #totalMiB} of dirty data
 * ({@link DirtyImage}: 1 MiB sequential writes, or 4 KiB writes to distinct random blocks) is opened in front of a
 * {@link FileEngine} (buffered, default options) on a fresh sparse file on the disk, and {@code drain} times
 * {@code Pcache.open} + {@code drain()} until everything is written back and fsynced kset by kset. The raw variants
 * write the same bytes at the same offsets in the same order straight through a {@link FileChannel} on the benchmark
 * thread into an equally fresh file: {@code rawOneFsync} with one fsync at the end (the bandwidth limit),
 * {@code rawFsyncPer128} with an fsync after every 128 writes sorted by offset (what writeback does per kset),
 * {@code rawFdatasyncPer128} the same with fdatasync, and {@code rawOneFsyncFromMapping}, {@code rawOneFsync} copying
 * from a freshly mapped file as writeback copies from a freshly mapped region. {@link #caching} picks the engine's
 * caching for {@code drain}. MiB/s = totalMiB / score. {@code drainMemory} drains into a {@link MemoryEngine}
 * instead: writeback's own cost.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms1g", "-Xmx1g"})
@Warmup(iterations = 1)
@Measurement(iterations = 3)
public class WritebackBench {

    static final long DEVICE_BYTES = 1L << 30;
    static final long REGION_BYTES = 1L << 30;
    static final int KSET_KEYS = 128;

    @Param({"seq1m", "rand4k"})
    public String pattern;

    @Param({"400"})
    public int totalMiB;

    @Param({"BUFFERED"})
    public FileEngine.Caching caching;

    private DirtyImage.Workload workload;
    private CacheOptions options;
    private Path golden;
    private Path regionFile;
    private Path backingFile;
    private BenchCache bench;
    private Arena arena;
    private MemorySegment source;
    private final CpuMeter cpu = new CpuMeter();

    @Setup(Level.Trial)
    public void buildImage() throws IOException {
        workload = DirtyImage.Workload.of(pattern, (long) totalMiB << 20, DEVICE_BYTES, 5);
        options = CacheOptions.defaults();
        golden = BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-dirty-");
        DirtyImage.build(golden, REGION_BYTES, DEVICE_BYTES, workload, options);
        arena = Arena.ofShared();
        source = arena.allocate(workload.chunk(), 4096);
        byte[] random = new byte[workload.chunk()];
        new SplittableRandom(1).nextBytes(random);
        MemorySegment.copy(MemorySegment.ofArray(random), 0, source, 0, random.length);
    }

    @Setup(Level.Invocation)
    public void freshFiles() throws IOException {
        regionFile = BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-wb-region-");
        Files.copy(golden, regionFile, StandardCopyOption.REPLACE_EXISTING);
        backingFile = BenchDirs.sparseFile(BenchDirs.disk(), "pcache-bench-wb-backing-", DEVICE_BYTES);
    }

    @TearDown(Level.Invocation)
    public void deleteFiles() throws IOException {
        CacheStatus status = bench == null ? null : bench.cache.status();
        if (bench != null) {
            bench.close();
            bench = null;
        }
        Files.deleteIfExists(regionFile);
        Files.deleteIfExists(backingFile);
        if (status != null && (status.writeback().errors() > 0
                || status.writeback().bytesWritten() != workload.bytes())) {
            throw new IllegalStateException("writeback wrote " + status.writeback().bytesWritten() + " of "
                    + workload.bytes() + " bytes: " + status.writeback());
        }
    }

    @TearDown(Level.Trial)
    public void deleteImage() throws IOException {
        arena.close();
        Files.deleteIfExists(golden);
    }

    @Benchmark
    public void drain() throws IOException {
        bench = BenchCache.open(regionFile, REGION_BYTES,
                FileEngine.open(backingFile, FileEngine.Options.DEFAULT.withCaching(caching)), options);
        bench.cache.drain();
    }

    /**
     * Writeback's own cost: {@code Pcache.open} + {@code drain()} in front of a {@link MemoryEngine} (the backing
     * device of the cache-core benchmarks), which copies each extent and completes it on the submitting thread.
     * Prints the process CPU the drain used.
     */
    @Benchmark
    public void drainMemory(MemoryBacking memory) throws IOException {
        cpu.start(0);
        bench = BenchCache.open(regionFile, REGION_BYTES, memory.engine, options);
        bench.cache.drain();
        cpu.stop(workload.bytes() / 4096, "4 KiB blocks written back");
    }

    /** A fresh zeroed {@link MemoryEngine} per invocation, allocated outside the timed part. */
    @State(Scope.Benchmark)
    public static class MemoryBacking {

        MemoryEngine engine;

        @Setup(Level.Invocation)
        public void allocate() {
            engine = new MemoryEngine(DEVICE_BYTES);
        }
    }

    @Benchmark
    public void rawOneFsync() throws IOException {
        try (FileChannel channel = FileChannel.open(backingFile, StandardOpenOption.WRITE)) {
            for (long offset : workload.offsets()) {
                writeFully(channel, offset);
            }
            channel.force(true);
        }
    }

    /**
     * {@code rawOneFsync} writing from consecutive chunks of a fresh read-only mapping of the region copy instead of
     * one reused buffer: the raw writer pays the first-touch page faults that {@code drain} pays on the region it
     * has just mapped (the bytes differ, the pages touched are as many).
     */
    @Benchmark
    public void rawOneFsyncFromMapping() throws IOException {
        try (Arena mapping = Arena.ofConfined();
             FileChannel region = FileChannel.open(regionFile, StandardOpenOption.READ);
             FileChannel channel = FileChannel.open(backingFile, StandardOpenOption.WRITE)) {
            MemorySegment mapped = region.map(FileChannel.MapMode.READ_ONLY, 0, region.size(), mapping);
            long chunk = workload.chunk();
            long[] offsets = workload.offsets();
            for (int i = 0; i < offsets.length; i++) {
                ByteBuffer buffer = mapped.asSlice((i * chunk) % (mapped.byteSize() - chunk + 1), chunk).asByteBuffer();
                while (buffer.hasRemaining()) {
                    channel.write(buffer, offsets[i] + buffer.position());
                }
            }
            channel.force(true);
        }
    }

    @Benchmark
    public void rawFsyncPer128() throws IOException {
        writeInKsets(true);
    }

    @Benchmark
    public void rawFdatasyncPer128() throws IOException {
        writeInKsets(false);
    }

    /** 128 writes at a time in offset order, each batch forced; {@code metaData} true is fsync, false fdatasync. */
    private void writeInKsets(boolean metaData) throws IOException {
        long[] offsets = workload.offsets();
        try (FileChannel channel = FileChannel.open(backingFile, StandardOpenOption.WRITE)) {
            for (int start = 0; start < offsets.length; start += KSET_KEYS) {
                long[] batch = Arrays.copyOfRange(offsets, start, Math.min(offsets.length, start + KSET_KEYS));
                Arrays.sort(batch);
                for (long offset : batch) {
                    writeFully(channel, offset);
                }
                channel.force(metaData);
            }
        }
    }

    private void writeFully(FileChannel channel, long offset) throws IOException {
        ByteBuffer buffer = source.asByteBuffer();
        while (buffer.hasRemaining()) {
            channel.write(buffer, offset + buffer.position());
        }
    }
}
