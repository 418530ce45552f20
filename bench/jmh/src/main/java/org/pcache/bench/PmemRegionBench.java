package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.MappedPmemRegion;

/**
 * The persistence primitive's cost: copy-in + persist of a 4 KiB block and of a 40-byte key into a
 * {@link MappedPmemRegion}, against a bare {@link MemorySegment#copy} into a plain mapping of the same kind (the
 * physical limit), a kset-sized batch (128 flushes, one drain), and dm-pcache's seeded CRC32C of 4 KiB against
 * table-driven implementations.
 *
 * <p>{@code dir=shm} maps files under PCACHE_BENCH_SHM (default /dev/shm), {@code dir=disk} under PCACHE_BENCH_DISK
 * (default the temp directory). Writes sweep a 64 MiB window 4 KiB at a time, as data heads do.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
public class PmemRegionBench {
    private static final long WINDOW = 64L << 20;
    private static final int BLOCK = 4096;
    private static final int KEY = 40;
    private static final int KSET_KEYS = 128;
    private static final int POLY = 0x82F63B78;
    private static final int[][] SLICES = slicingTables();

    @Param({"shm"})
    public String dir;

    private Path regionFile;
    private Path bareFile;
    private MappedPmemRegion region;
    private Arena arena;
    private MemorySegment bare;
    private MemorySegment block;
    private MemorySegment key;
    private byte[] blockBytes;
    private long blockOffset;
    private long keyOffset;

    @Setup(Level.Trial)
    public void map() throws IOException {
        Path base = Path.of("shm".equals(dir)
                ? System.getenv().getOrDefault("PCACHE_BENCH_SHM", "/dev/shm")
                : System.getenv().getOrDefault("PCACHE_BENCH_DISK", System.getProperty("java.io.tmpdir")));
        regionFile = Files.createTempFile(base, "pcache-bench-region-", ".img");
        Files.delete(regionFile);
        bareFile = Files.createTempFile(base, "pcache-bench-bare-", ".img");
        region = MappedPmemRegion.open(regionFile, 2 * WINDOW);
        arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(bareFile, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            bare = channel.map(FileChannel.MapMode.READ_WRITE, 0, 2 * WINDOW, arena);
        }
        blockBytes = new byte[BLOCK];
        for (int i = 0; i < BLOCK; i++) {
            blockBytes[i] = (byte) (i * 31 + 7);
        }
        block = arena.allocate(BLOCK, BLOCK);
        MemorySegment.copy(MemorySegment.ofArray(blockBytes), 0, block, 0, BLOCK);
        key = MemorySegment.ofArray(new byte[KEY]);
        key.fill((byte) 0x5A);
        if (crc4kByteTable() != crc4k() || crc4kSlicingBy8() != crc4k() || crc4kHeapArray() != crc4k()) {
            throw new IllegalStateException("CRC implementations disagree");
        }
        // Touch every page once so no benchmark pays first-fault costs.
        region.zero(0, 2 * WINDOW);
        region.persist(0, 2 * WINDOW);
        bare.fill((byte) 0);
    }

    @TearDown(Level.Trial)
    public void unmap() throws IOException {
        region.close();
        arena.close();
        Files.deleteIfExists(regionFile);
        Files.deleteIfExists(bareFile);
    }

    private long nextBlock() {
        blockOffset = (blockOffset + BLOCK) & (WINDOW - 1);
        return blockOffset;
    }

    private long nextKey() {
        keyOffset += KEY;
        if (keyOffset + KEY > WINDOW) {
            keyOffset = 0;
        }
        return WINDOW + keyOffset;
    }

    @Benchmark
    public void copyPersist4k() {
        long offset = nextBlock();
        region.write(offset, block, 0, BLOCK);
        region.persist(offset, BLOCK);
    }

    @Benchmark
    public void bareCopy4k() {
        MemorySegment.copy(block, 0, bare, nextBlock(), BLOCK);
    }

    @Benchmark
    public void copyPersistKey40() {
        long offset = nextKey();
        region.write(offset, key, 0, KEY);
        region.persist(offset, KEY);
    }

    @Benchmark
    public void bareCopyKey40() {
        MemorySegment.copy(key, 0, bare, nextKey(), KEY);
    }

    /** A kset close's worth of data: 128 blocks copied and flushed, one drain; reported per block. */
    @Benchmark
    @OperationsPerInvocation(KSET_KEYS)
    public void copyFlush4kDrainPer128() {
        for (int i = 0; i < KSET_KEYS; i++) {
            long offset = nextBlock();
            region.write(offset, block, 0, BLOCK);
            region.flush(offset, BLOCK);
        }
        region.drain();
    }

    @Benchmark
    public int crc4k() {
        return Crc32c.crc(block, 0, BLOCK);
    }

    @Benchmark
    public int crc4kHeapArray() {
        return Crc32c.crc(blockBytes, 0, BLOCK);
    }

    /** The JDK intrinsic alone (standard CRC-32C, not dm-pcache's): the floor for crc4k. */
    @Benchmark
    public long crc4kJdkIntrinsicOnly() {
        CRC32C crc = new CRC32C();
        crc.update(blockBytes, 0, BLOCK);
        return crc.getValue();
    }

    /** A byte-at-a-time table, as the design notes first suggested. */
    @Benchmark
    public int crc4kByteTable() {
        int register = Crc32c.SEED;
        int[] table = SLICES[0];
        for (int i = 0; i < BLOCK; i++) {
            register = (register >>> 8) ^ table[(register ^ blockBytes[i]) & 0xFF];
        }
        return register;
    }

    /** Slicing-by-8: the fastest portable table implementation. */
    @Benchmark
    public int crc4kSlicingBy8() {
        int register = Crc32c.SEED;
        for (int i = 0; i < BLOCK; i += 8) {
            long word = block.get(ValueLayout.JAVA_LONG_UNALIGNED, i);
            int low = register ^ (int) word;
            int high = (int) (word >>> 32);
            register = SLICES[7][low & 0xFF] ^ SLICES[6][(low >>> 8) & 0xFF] ^ SLICES[5][(low >>> 16) & 0xFF]
                    ^ SLICES[4][low >>> 24] ^ SLICES[3][high & 0xFF] ^ SLICES[2][(high >>> 8) & 0xFF]
                    ^ SLICES[1][(high >>> 16) & 0xFF] ^ SLICES[0][high >>> 24];
        }
        return register;
    }

    private static int[][] slicingTables() {
        int[][] tables = new int[8][256];
        for (int value = 0; value < 256; value++) {
            int register = value;
            for (int bit = 0; bit < 8; bit++) {
                register = (register >>> 1) ^ ((register & 1) != 0 ? POLY : 0);
            }
            tables[0][value] = register;
        }
        for (int slice = 1; slice < 8; slice++) {
            for (int value = 0; value < 256; value++) {
                int previous = tables[slice - 1][value];
                tables[slice][value] = (previous >>> 8) ^ tables[0][previous & 0xFF];
            }
        }
        return tables;
    }
}
