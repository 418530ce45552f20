package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FileEngineTest {

    private static final int BLOCK = 4096;
    private static final long WAIT_SECONDS = 10;
    private static final FileEngine.Options OPTIONS = FileEngine.Options.DEFAULT.withIoThreads(4);
    /** File systems whose fallocate punches holes, and those that also zero a range. */
    private static final Set<String> HOLE_FILE_SYSTEMS = Set.of("ext4", "xfs", "btrfs", "tmpfs");
    private static final Set<String> ZERO_RANGE_FILE_SYSTEMS = Set.of("ext4", "xfs");

    @TempDir
    Path dir;

    @Test
    void concurrentWritesAndReadsOnARealFileRoundTrip() throws Exception {
        int threads = 4;
        int blocksPerThread = 64;
        long seed = 0xf11eL;
        Path file = sizedFile("concurrent.img", (long) threads * blocksPerThread * BLOCK);
        try (BackingDevice device = BackingDevice.start(FileEngine.open(file, OPTIONS));
             ExecutorService submitters = Executors.newFixedThreadPool(threads)) {
            assertThat(device.size()).isEqualTo(Files.size(file));
            CountDownLatch written = new CountDownLatch(threads * blocksPerThread);
            List<BackingIoException> errors = Collections.synchronizedList(new ArrayList<>());
            List<Future<?>> submitted = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                submitted.add(submitters.submit(() -> {
                    for (int i = 0; i < blocksPerThread; i++) {
                        long block = (long) i * threads + thread;
                        MemoryRequest write = new MemoryRequest(BackingOp.WRITE,
                                MemorySegment.ofArray(content(seed, block)), block * BLOCK, (request, error) -> {
                                    if (error != null) {
                                        errors.add(error);
                                    }
                                    written.countDown();
                                });
                        if (i % 2 == 0) {
                            device.submit(write);
                        } else {
                            device.submitDirect(write);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> future : submitted) {
                future.get(WAIT_SECONDS, TimeUnit.SECONDS);
            }
            assertThat(written.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(errors).isEmpty();
            device.flush();

            int blocks = threads * blocksPerThread;
            List<CompletableFuture<byte[]>> reads = new ArrayList<>();
            for (long block = 0; block < blocks; block++) {
                byte[] target = new byte[BLOCK];
                CompletableFuture<byte[]> read = new CompletableFuture<>();
                device.submit(new MemoryRequest(BackingOp.READ, MemorySegment.ofArray(target), block * BLOCK,
                        (request, error) -> {
                            if (error == null) {
                                read.complete(target);
                            } else {
                                read.completeExceptionally(error);
                            }
                        }));
                reads.add(read);
            }
            for (int block = 0; block < blocks; block++) {
                assertThat(reads.get(block).get(WAIT_SECONDS, TimeUnit.SECONDS))
                        .as("block %d read through the device (seed %x)", block, seed).isEqualTo(content(seed, block));
            }
        }
        byte[] onDisk = Files.readAllBytes(file);
        for (int block = 0; block < threads * blocksPerThread; block++) {
            assertThat(Arrays.copyOfRange(onDisk, block * BLOCK, (block + 1) * BLOCK))
                    .as("block %d in the file", block).isEqualTo(content(seed, block));
        }
    }

    @Test
    void readMeetingTheEndOfAShrunkFileFailsWithOutOfRangeInsteadOfHanging() throws Exception {
        Path file = sizedFile("shrinking.img", 64 * BLOCK);
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.truncate(8 * BLOCK + 100);
            }
            assertThatThrownBy(() -> BlockingIo.read(engine, 8 * BLOCK, MemorySegment.ofArray(new byte[BLOCK])))
                    .isInstanceOfSatisfying(BackingIoException.class, error -> {
                        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
                        assertThat(error).hasMessageContaining("end of file at offset " + (8 * BLOCK + 100));
                    });
        }
    }

    @Test
    void rangesPastTheEndFailWithoutGrowingTheFile() throws Exception {
        Path file = sizedFile("bounded.img", 8 * BLOCK);
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            assertThatThrownBy(() -> BlockingIo.write(engine, 8 * BLOCK, MemorySegment.ofArray(new byte[BLOCK])))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE));
            assertThatThrownBy(() -> BlockingIo.read(engine, 7 * BLOCK + 1, MemorySegment.ofArray(new byte[BLOCK])))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE));
        }
        assertThat(Files.size(file)).isEqualTo(8 * BLOCK);
    }

    @Test
    void callbacksRunOnTheNamedIoThreads() throws Exception {
        Path file = sizedFile("threads.img", 8 * BLOCK);
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            CompletableFuture<String> thread = new CompletableFuture<>();
            engine.read(0, MemorySegment.ofArray(new byte[BLOCK]),
                    error -> thread.complete(Thread.currentThread().getName()));
            assertThat(thread.get(WAIT_SECONDS, TimeUnit.SECONDS)).startsWith("pcache-backing-io-");
        }
    }

    @Test
    void heapMemoryOfAnyElementTypeRoundTrips() throws Exception {
        Path file = sizedFile("heap.img", 8 * BLOCK);
        long[] source = new SplittableRandom(7).longs(BLOCK / Long.BYTES).toArray();
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            BlockingIo.write(engine, BLOCK, MemorySegment.ofArray(source));
            BlockingIo.write(engine, 2 * BLOCK, MemorySegment.ofArray(source).asReadOnly());
            long[] target = new long[source.length];
            BlockingIo.read(engine, BLOCK, MemorySegment.ofArray(target));
            assertThat(target).isEqualTo(source);
            BlockingIo.read(engine, 2 * BLOCK, MemorySegment.ofArray(target));
            assertThat(target).isEqualTo(source);
            BlockingIo.flush(engine);
        }
    }

    @Test
    void memoryTheIoThreadCannotTouchFailsTheOperationInsteadOfLosingIt() throws Exception {
        Path file = sizedFile("confined.img", 8 * BLOCK);
        try (FileEngine engine = FileEngine.open(file, OPTIONS); Arena confined = Arena.ofConfined()) {
            assertThatThrownBy(() -> BlockingIo.read(engine, 0, confined.allocate(BLOCK)))
                    .isInstanceOfSatisfying(BackingIoException.class, error -> {
                        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR);
                        assertThat(error).hasCauseInstanceOf(WrongThreadException.class);
                    });
            BlockingIo.read(engine, 0, MemorySegment.ofArray(new byte[BLOCK]));
        }
    }

    @Test
    void openRefusesWhatIsNeitherARegularFileNorABlockDevice() {
        assertThatThrownBy(() -> FileEngine.open(Path.of("/dev/null"), OPTIONS)).isInstanceOf(IOException.class)
                .hasMessageContaining("not a regular file or block device");
        assertThatThrownBy(() -> FileEngine.open(dir, OPTIONS)).isInstanceOf(IOException.class)
                .hasMessageContaining("not a regular file or block device");
        assertThatThrownBy(() -> FileEngine.open(dir.resolve("missing.img"), OPTIONS))
                .isInstanceOf(NoSuchFileException.class);
    }

    @Test
    void closeDoesNotLoseCompletedWrites() throws Exception {
        Path file = sizedFile("close.img", 8 * BLOCK);
        byte[] data = content(3, 3);
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            BlockingIo.write(engine, 3 * BLOCK, MemorySegment.ofArray(data));
        }
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
            channel.read(buffer, 3 * BLOCK);
            assertThat(buffer.array()).isEqualTo(data);
        }
    }

    @Test
    void allocationReportsTheHolesOfASparseFile() throws Exception {
        Path file = sizedFile("sparse.img", 64 * BLOCK); // its last byte written: the last block is data
        assumeTrue(HOLE_FILE_SYSTEMS.contains(Files.getFileStore(file).type()),
                "SEEK_HOLE with block granularity needs ext4/xfs/btrfs/tmpfs");
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            BlockingIo.write(engine, 8 * BLOCK, MemorySegment.ofArray(new byte[4 * BLOCK]).fill((byte) 1));
            assertThat(BlockingIo.allocation(engine, 0, 64 * BLOCK)).containsExactly(
                    new BackingExtent(8 * BLOCK, BackingExtent.Kind.HOLE),
                    new BackingExtent(4 * BLOCK, BackingExtent.Kind.DATA),
                    new BackingExtent(51 * BLOCK, BackingExtent.Kind.HOLE),
                    new BackingExtent(BLOCK, BackingExtent.Kind.DATA));
            assertThat(BlockingIo.allocation(engine, 10 * BLOCK, 4 * BLOCK)).as("clipped to the range asked")
                    .containsExactly(new BackingExtent(2 * BLOCK, BackingExtent.Kind.DATA),
                            new BackingExtent(2 * BLOCK, BackingExtent.Kind.HOLE));
            assertThatThrownBy(() -> BlockingIo.allocation(engine, 64 * BLOCK, BLOCK))
                    .hasCauseInstanceOf(BackingIoException.class);
        }
    }

    @Test
    void discardPunchesAHoleThatReadsBackAsZeroes() throws Exception {
        Path file = sizedFile("discard.img", 16 * BLOCK);
        assumeTrue(HOLE_FILE_SYSTEMS.contains(Files.getFileStore(file).type()),
                "punch hole needs ext4/xfs/btrfs/tmpfs");
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            writeContent(engine, 16);
            long before = allocatedBytes(file);
            BlockingIo.discard(engine, 4 * BLOCK, 8 * BLOCK);
            BlockingIo.flush(engine);
            assertThat(engine.supportsDiscard()).isTrue();
            assertThat(before - allocatedBytes(file)).as("bytes freed by the hole").isEqualTo(8L * BLOCK);
            assertThat(Files.size(file)).isEqualTo(16 * BLOCK);
            assertZeroedExactly(engine, 16, 4, 12);
        }
    }

    @Test
    void writeZeroesZeroesTheRangeAndKeepsTheRest() throws Exception {
        Path file = sizedFile("zeroes.img", 16 * BLOCK);
        assumeTrue(ZERO_RANGE_FILE_SYSTEMS.contains(Files.getFileStore(file).type()), "ZERO_RANGE needs ext4/xfs");
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            writeContent(engine, 16);
            BlockingIo.writeZeroes(engine, 3 * BLOCK, 5 * BLOCK);
            assertThat(engine.supportsWriteZeroes()).isTrue();
            assertZeroedExactly(engine, 16, 3, 8);
        }
    }

    @Test
    void writeZeroesWritesZeroBlocksWhereTheFileSystemCannotZeroARange() throws Exception {
        Path shm = Path.of("/dev/shm");
        assumeTrue(Files.isDirectory(shm) && Files.getFileStore(shm).type().equals("tmpfs"), "needs tmpfs");
        Path file = Files.createTempFile(shm, "pcache-zeroes", ".img");
        try {
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
                channel.truncate(0).write(ByteBuffer.allocate(1), 16 * BLOCK - 1);
            }
            try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
                writeContent(engine, 16);
                assertThat(engine.supportsWriteZeroes()).as("not tried yet").isTrue();
                // tmpfs has no FALLOC_FL_ZERO_RANGE: the kernel answers EOPNOTSUPP.
                BlockingIo.writeZeroes(engine, 2 * BLOCK, 3 * BLOCK);
                assertThat(engine.supportsWriteZeroes()).isFalse();
                assertZeroedExactly(engine, 16, 2, 5);
                BlockingIo.writeZeroes(engine, 9 * BLOCK, 2 * BLOCK + 100);
                byte[] tail = new byte[BLOCK];
                BlockingIo.read(engine, 9 * BLOCK, MemorySegment.ofArray(tail));
                assertThat(tail).containsOnly((byte) 0);
                BlockingIo.read(engine, 11 * BLOCK, MemorySegment.ofArray(tail));
                assertThat(Arrays.copyOfRange(tail, 0, 100)).containsOnly((byte) 0);
                assertThat(Arrays.copyOfRange(tail, 100, BLOCK)).isEqualTo(
                        Arrays.copyOfRange(content(0xd15c, 11), 100, BLOCK));
            }
        } finally {
            Files.delete(file);
        }
    }

    @Test
    void discardAndWriteZeroesPastTheEndFailWithoutGrowingTheFile() throws Exception {
        Path file = sizedFile("bounded-zeroes.img", 8 * BLOCK);
        try (FileEngine engine = FileEngine.open(file, OPTIONS)) {
            assertThatThrownBy(() -> BlockingIo.discard(engine, 7 * BLOCK, 2 * BLOCK))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE));
            assertThatThrownBy(() -> BlockingIo.writeZeroes(engine, 8 * BLOCK, BLOCK))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE));
        }
        assertThat(Files.size(file)).isEqualTo(8 * BLOCK);
    }

    /** Writes {@link #content} of seed 0xd15c to blocks 0 .. blocks - 1 and makes it durable. */
    private static void writeContent(FileEngine engine, int blocks) throws IOException {
        for (int block = 0; block < blocks; block++) {
            BlockingIo.write(engine, (long) block * BLOCK, MemorySegment.ofArray(content(0xd15c, block)));
        }
        BlockingIo.flush(engine);
    }

    /** Asserts that blocks {@code [from, to)} read back as zeroes and every other block as written. */
    private static void assertZeroedExactly(FileEngine engine, int blocks, int from, int to) throws IOException {
        for (int block = 0; block < blocks; block++) {
            byte[] back = new byte[BLOCK];
            BlockingIo.read(engine, (long) block * BLOCK, MemorySegment.ofArray(back));
            if (block >= from && block < to) {
                assertThat(back).as("block %d", block).containsOnly((byte) 0);
            } else {
                assertThat(back).as("block %d", block).isEqualTo(content(0xd15c, block));
            }
        }
    }

    /** Bytes the file system allocated to {@code file} (st_blocks * 512, from stat(1)). */
    private static long allocatedBytes(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "--format=%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(stat.getInputStream().readAllBytes()).trim().split(" ");
        assertThat(stat.waitFor()).as("stat %s: %s", file, String.join(" ", out)).isZero();
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    private Path sizedFile(String name, long size) throws IOException {
        Path file = dir.resolve(name);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.allocate(1), size - 1);
        }
        return file;
    }

    /** Deterministic content of {@code block}: a seeded stream, so a misplaced block shows. */
    static byte[] content(long seed, long block) {
        byte[] bytes = new byte[BLOCK];
        new SplittableRandom(seed * 31 + block).nextBytes(bytes);
        MemorySegment.ofArray(bytes).set(ValueLayout.JAVA_LONG_UNALIGNED, 0, block);
        return bytes;
    }
}
