package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

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
