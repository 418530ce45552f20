package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** O_DIRECT on the two file systems pcache uses here: ext4 under the system temp dir, and tmpfs. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FileEngineDirectTest {

    private static final int BLOCK = 4096;
    private static final long WAIT_SECONDS = 10;
    private static final FileEngine.Options DIRECT = FileEngine.Options.DEFAULT
            .withCaching(FileEngine.Caching.DIRECT).withIoThreads(2);

    private Path dir;

    @AfterEach
    void deleteDir() throws IOException {
        if (dir != null) {
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(path);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"java.io.tmpdir", "/dev/shm"})
    void anyAlignmentIsTakenSoTheCachesSectorsWork(String parent) throws Exception {
        try (FileEngine engine = FileEngine.open(sizedFile(parent, 16 * BLOCK), DIRECT)) {
            assertThat(engine.alignment()).isEqualTo(1);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"java.io.tmpdir", "/dev/shm"})
    void requestsThatAreNotBlockAlignedGoThroughThePageCacheAndStayCoherentWithDirectOnes(String parent)
            throws Exception {
        byte[] block = new byte[BLOCK];
        new SplittableRandom(5).nextBytes(block);
        byte[] sector = new byte[512];
        new SplittableRandom(6).nextBytes(sector);
        try (BackingDevice device = BackingDevice.start(FileEngine.open(sizedFile(parent, 16 * BLOCK), DIRECT))) {
            assertThat(status(device, BackingOp.WRITE, BLOCK, MemorySegment.ofArray(block))).isNull();
            assertThat(status(device, BackingOp.WRITE, BLOCK + 512, MemorySegment.ofArray(sector))).isNull();
            byte[] expected = block.clone();
            System.arraycopy(sector, 0, expected, 512, 512);
            byte[] direct = new byte[BLOCK];
            assertThat(status(device, BackingOp.READ, BLOCK, MemorySegment.ofArray(direct))).isNull();
            assertThat(direct).as("an O_DIRECT read sees the buffered sector write").isEqualTo(expected);
            byte[] buffered = new byte[BLOCK + 512];
            assertThat(status(device, BackingOp.READ, BLOCK, MemorySegment.ofArray(buffered))).isNull();
            assertThat(Arrays.copyOf(buffered, BLOCK)).as("a buffered read sees the O_DIRECT write")
                    .isEqualTo(expected);
            assertThat(status(device, BackingOp.READ, 16 * BLOCK, MemorySegment.ofArray(new byte[BLOCK])).reason())
                    .isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
            device.flush();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"java.io.tmpdir", "/dev/shm"})
    void misalignedNativeMemoryIsBouncedAndRoundTrips(String parent) throws Exception {
        byte[] expected = new byte[2 * BLOCK];
        new SplittableRandom(11).nextBytes(expected);
        try (BackingDevice device = BackingDevice.start(FileEngine.open(sizedFile(parent, 16 * BLOCK), DIRECT));
             Arena arena = Arena.ofShared()) {
            MemorySegment source = arena.allocate(3 * BLOCK, BLOCK).asSlice(512, expected.length);
            source.copyFrom(MemorySegment.ofArray(expected));
            assertThat(status(device, BackingOp.WRITE, 4 * BLOCK, source)).isNull();
            MemorySegment target = arena.allocate(3 * BLOCK, BLOCK).asSlice(1024, expected.length);
            assertThat(status(device, BackingOp.READ, 4 * BLOCK, target)).isNull();
            assertThat(target.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(expected);
            byte[] heapTarget = new byte[expected.length];
            assertThat(status(device, BackingOp.READ, 4 * BLOCK, MemorySegment.ofArray(heapTarget))).isNull();
            assertThat(heapTarget).isEqualTo(expected);
            device.flush();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"java.io.tmpdir", "/dev/shm"})
    void aSizeThatIsNotAWholeNumberOfBlocksIsRoundedDown(String parent) throws Exception {
        try (FileEngine engine = FileEngine.open(sizedFile(parent, 4 * BLOCK + 100), DIRECT)) {
            assertThat(engine.size()).isEqualTo(4 * BLOCK);
        }
    }

    private Path sizedFile(String parent, long size) throws IOException {
        Path parentDir = Path.of(parent.startsWith("/") ? parent : System.getProperty(parent));
        dir = Files.createTempDirectory(parentDir, "pcache-direct-");
        Path file = dir.resolve("direct.img");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.allocate(1), size - 1);
        }
        return file;
    }

    private static BackingIoException status(BackingDevice device, BackingOp op, long offset, MemorySegment memory)
            throws Exception {
        CompletableFuture<BackingIoException> status = new CompletableFuture<>();
        device.submit(new MemoryRequest(op, memory, offset, (request, error) -> status.complete(error)));
        return status.get(WAIT_SECONDS, TimeUnit.SECONDS);
    }
}
