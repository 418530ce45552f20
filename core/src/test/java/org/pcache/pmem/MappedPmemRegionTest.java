package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class MappedPmemRegionTest {
    private static final long MIB = 1024 * 1024;

    /** On a disk file system (not tmpfs): msync writes pages back, and cleans them. */
    private Path diskDir;

    /** On tmpfs. */
    private Path shmDir;

    @BeforeEach
    void createShmDir() throws IOException {
        shmDir = Files.createTempDirectory(Path.of("/dev/shm"), "pcache-pmem-test-");
        diskDir = Files.createTempDirectory(DirtyPages.DISK_DIR, "pcache-pmem-test-");
    }

    @AfterEach
    void deleteShmDir() throws IOException {
        try (var files = Files.list(shmDir)) {
            for (Path file : files.toList()) {
                Files.delete(file);
            }
        }
        Files.delete(shmDir);
        try (var files = Files.list(diskDir)) {
            for (Path file : files.toList()) {
                Files.delete(file);
            }
        }
        Files.delete(diskDir);
    }

    private static MemorySegment pattern(int length, int seed) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i * 7 + seed);
        }
        return MemorySegment.ofArray(bytes);
    }

    private static byte[] readBack(PmemRegion region, long offset, int length) {
        byte[] bytes = new byte[length];
        region.read(offset, MemorySegment.ofArray(bytes), 0, length);
        return bytes;
    }

    @Test
    void missingFileOnTmpfsIsCreatedAtTheRequestedSizeInMsyncMode() throws IOException {
        Path path = shmDir.resolve("cache");

        try (MappedPmemRegion region = MappedPmemRegion.open(path, 64 * MIB)) {
            assertThat(region.size()).isEqualTo(64 * MIB);
            // tmpfs has no DAX, so MAP_SYNC is refused and the region falls back to msync.
            assertThat(region.mode()).isEqualTo(PersistenceMode.MSYNC);
            assertThat(readBack(region, 32 * MIB, 4096)).containsOnly(0);
        }
        assertThat(Files.size(path)).isEqualTo(64 * MIB);
    }

    @Test
    void flushedAndDrainedDataIsThereAfterUnmapAndRemapOnTmpfs() throws IOException {
        flushedAndDrainedDataIsThereAfterRemap(shmDir.resolve("cache"));
    }

    @Test
    void flushedAndDrainedDataIsThereAfterUnmapAndRemapOnDisk() throws IOException {
        flushedAndDrainedDataIsThereAfterRemap(diskDir.resolve("cache"));
    }

    private void flushedAndDrainedDataIsThereAfterRemap(Path path) throws IOException {
        long[] offsets = {0, 8192 + 100, 3 * MIB - 10, 17 * MIB, 32 * MIB - 3000};
        try (MappedPmemRegion region = MappedPmemRegion.open(path, 32 * MIB)) {
            for (int i = 0; i < offsets.length; i++) {
                region.write(offsets[i], pattern(5000, i), 0, Math.min(5000, region.size() - offsets[i]));
                region.flush(offsets[i], Math.min(5000, region.size() - offsets[i]));
            }
            region.drain();
            if (path.startsWith(diskDir)) {
                assertThat(DirtyPages.dirtyKb(region.view(0, region.size()))).as("dirty after the drain").isZero();
            }
        }
        try (MappedPmemRegion region = MappedPmemRegion.open(path, 32 * MIB)) {
            for (int i = 0; i < offsets.length; i++) {
                int length = (int) Math.min(5000, region.size() - offsets[i]);
                assertThat(readBack(region, offsets[i], length))
                        .isEqualTo(Arrays.copyOf(pattern(5000, i).toArray(ValueLayout.JAVA_BYTE), length));
            }
        }
    }

    @Test
    void sparseFileBeyondTwoGibMapsAsOneSegment() throws IOException {
        Path path = diskDir.resolve("big");
        long size = 3L * 1024 * MIB;
        long offset = size - 3 * MIB + 123;

        try (MappedPmemRegion region = MappedPmemRegion.open(path, size)) {
            region.write(offset, pattern(8192, 3), 0, 8192);
            region.persist(offset, 8192);
            region.putLongRelease(size - 8, 0x0123456789ABCDEFL);
            region.persist(size - 8, 8);
            List<String> mappings = DirtyPages.mappingsOf(path);
            assertThat(mappings).as("mappings of the file").hasSize(1);
            String[] range = mappings.getFirst().split(" ")[0].split("-");
            assertThat(Long.parseUnsignedLong(range[1], 16) - Long.parseUnsignedLong(range[0], 16)).isEqualTo(size);
            assertThat(DirtyPages.dirtyKb(region.view(0, size))).as("dirty after the persists").isZero();
        }
        try (MappedPmemRegion region = MappedPmemRegion.open(path, size)) {
            assertThat(region.size()).isEqualTo(size);
            assertThat(readBack(region, offset, 8192)).isEqualTo(pattern(8192, 3).toArray(ValueLayout.JAVA_BYTE));
            assertThat(region.getLongAcquire(size - 8)).isEqualTo(0x0123456789ABCDEFL);
        }
        assertThat(Files.size(path)).isEqualTo(size);
    }

    @Test
    void existingFileOfAnotherSizeIsRefusedAndLeftAlone() throws IOException {
        Path path = shmDir.resolve("cache");
        MappedPmemRegion.open(path, 8 * MIB).close();

        assertThatThrownBy(() -> MappedPmemRegion.open(path, 16 * MIB))
                .isInstanceOf(RegionSizeMismatchException.class)
                .hasMessageContaining(String.valueOf(8 * MIB)).hasMessageContaining(String.valueOf(16 * MIB));
        assertThat(Files.size(path)).isEqualTo(8 * MIB);
    }

    @Test
    void readOnlyOpenReadsTheFileWholeAndRefusesEveryStore() throws IOException {
        Path path = shmDir.resolve("cache");
        try (MappedPmemRegion region = MappedPmemRegion.open(path, 2 * MIB)) {
            region.write(4096, pattern(4096, 5), 0, 4096);
            region.persist(4096, 4096);
        }
        byte[] before = Files.readAllBytes(path);

        try (MappedPmemRegion region = MappedPmemRegion.openReadOnly(path)) {
            assertThat(region.size()).isEqualTo(2 * MIB);
            assertThat(region.mode()).isEqualTo(PersistenceMode.READ_ONLY);
            assertThat(readBack(region, 4096, 4096)).isEqualTo(pattern(4096, 5).toArray(ValueLayout.JAVA_BYTE));
            assertThatThrownBy(() -> region.write(0, pattern(64, 1), 0, 64))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("read-only");
            assertThatThrownBy(() -> region.zero(0, 64)).isInstanceOf(IllegalArgumentException.class);
            assertThatThrownBy(() -> region.putLongRelease(0, 1)).isInstanceOf(IllegalArgumentException.class);
        }
        assertThat(Files.readAllBytes(path)).isEqualTo(before);
    }

    @Test
    void readOnlyOpenOfAMissingFileFailsAndCreatesNothing() {
        Path path = shmDir.resolve("missing");
        assertThatThrownBy(() -> MappedPmemRegion.openReadOnly(path)).isInstanceOf(NoSuchFileException.class);
        assertThat(Files.exists(path)).isFalse();
    }

    @Test
    void emptyExistingFileIsExtended() throws IOException {
        Path path = Files.createFile(shmDir.resolve("cache"));

        try (MappedPmemRegion region = MappedPmemRegion.open(path, 4 * MIB)) {
            assertThat(region.size()).isEqualTo(4 * MIB);
        }
    }

    @Test
    void orderedLongsAreLittleEndianAndMustBeAligned() throws IOException {
        try (MappedPmemRegion region = MappedPmemRegion.open(shmDir.resolve("cache"), MIB)) {
            region.putLongRelease(64, 0x0102030405060708L);

            assertThat(readBack(region, 64, 8)).containsExactly(8, 7, 6, 5, 4, 3, 2, 1);
            assertThat(region.getLongAcquire(64)).isEqualTo(0x0102030405060708L);
            assertThatThrownBy(() -> region.getLongAcquire(68)).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("aligned");
            assertThatThrownBy(() -> region.putLongRelease(3, 1)).isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void viewIsReadOnlyAndSeesLaterStores() throws IOException {
        try (MappedPmemRegion region = MappedPmemRegion.open(shmDir.resolve("cache"), MIB)) {
            MemorySegment view = region.view(4096, 4096);
            region.write(4096, pattern(16, 9), 0, 16);

            assertThat(view.isReadOnly()).isTrue();
            assertThat(view.get(ValueLayout.JAVA_BYTE, 1)).isEqualTo((byte) 16);
            assertThatThrownBy(() -> view.set(ValueLayout.JAVA_BYTE, 0, (byte) 1))
                    .isInstanceOf(IllegalArgumentException.class);
        }
    }

    @Test
    void zeroClearsTheRange() throws IOException {
        try (MappedPmemRegion region = MappedPmemRegion.open(shmDir.resolve("cache"), MIB)) {
            region.write(0, pattern(8192, 1), 0, 8192);

            region.zero(100, 5000);

            byte[] bytes = readBack(region, 0, 8192);
            assertThat(Arrays.copyOfRange(bytes, 100, 5100)).containsOnly(0);
            assertThat(bytes[99]).isEqualTo(pattern(8192, 1).get(ValueLayout.JAVA_BYTE, 99));
        }
    }

    @Test
    void flushOutsideTheRegionIsRejected() throws IOException {
        try (MappedPmemRegion region = MappedPmemRegion.open(shmDir.resolve("cache"), MIB)) {
            assertThatThrownBy(() -> region.flush(MIB - 4, 8)).isInstanceOf(IndexOutOfBoundsException.class);
        }
    }

    @Test
    void concurrentWritersFlushersAndDrainersLoseNothing() throws Exception {
        Path path = diskDir.resolve("cache");
        int threads = 4;
        int rounds = 50;
        int length = 3000;
        try (MappedPmemRegion region = MappedPmemRegion.open(path, 16 * MIB)) {
            ExecutorService pool = Executors.newFixedThreadPool(threads, Thread.ofPlatform().name("flusher-", 0)
                    .factory());
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<CompletableFuture<Void>> workers = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int thread = t;
                    workers.add(CompletableFuture.runAsync(() -> {
                        awaitQuietly(start);
                        for (int round = 0; round < rounds; round++) {
                            long offset = (long) (round * threads + thread) * 4 * length;
                            region.write(offset, pattern(length, thread + round), 0, length);
                            region.flush(offset, length);
                            region.drain();
                        }
                    }, pool));
                }
                start.countDown();
                CompletableFuture.allOf(workers.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
                assertThat(DirtyPages.dirtyKb(region.view(0, region.size()))).as("dirty after every drain")
                        .isZero();
            } finally {
                pool.shutdown();
                assertThat(pool.awaitTermination(10, TimeUnit.SECONDS)).isTrue();
            }
        }
        try (MappedPmemRegion region = MappedPmemRegion.open(path, 16 * MIB)) {
            for (int t = 0; t < threads; t++) {
                for (int round = 0; round < rounds; round++) {
                    long offset = (long) (round * threads + t) * 4 * length;
                    assertThat(readBack(region, offset, length)).as("thread %d round %d", t, round)
                            .isEqualTo(pattern(length, t + round).toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    private static void awaitQuietly(CountDownLatch latch) {
        try {
            if (!latch.await(10, TimeUnit.SECONDS)) {
                throw new IllegalStateException("start signal not given");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Test
    void closeIsIdempotentAndLaterAccessFails() throws IOException {
        MappedPmemRegion region = MappedPmemRegion.open(shmDir.resolve("cache"), MIB);
        region.close();
        region.close();

        assertThatThrownBy(() -> region.getLongAcquire(0)).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void nonPositiveSizeIsRefused() {
        assertThatThrownBy(() -> MappedPmemRegion.open(shmDir.resolve("cache"), 0))
                .isInstanceOf(IllegalArgumentException.class);
    }
}
