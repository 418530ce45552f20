package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PendingFlushesTest {
    private static final long CHUNK = 64 * 1024;

    @TempDir
    Path dir;

    private Arena arena;
    private MemorySegment mapping;

    @BeforeEach
    void map() throws IOException {
        arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(dir.resolve("region"), StandardOpenOption.CREATE,
                StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            mapping = channel.map(FileChannel.MapMode.READ_WRITE, 0, 512 * CHUNK, arena);
        }
    }

    @AfterEach
    void unmap() {
        arena.close();
    }

    @Test
    void smallRegionsUseSixtyFourKibChunks() {
        assertThat(new PendingFlushes(mapping).chunkSize()).isEqualTo(CHUNK);
    }

    @Test
    void hugeRegionsUseLargerChunksToBoundTheScan() {
        MemorySegment huge = MemorySegment.NULL.reinterpret(16L << 40);

        PendingFlushes flushes = new PendingFlushes(huge);

        assertThat((16L << 40) / flushes.chunkSize()).isLessThanOrEqualTo(1 << 16);
        assertThat(flushes.chunkSize()).isEqualTo(256L << 20);
    }

    @Test
    void flushMarksEveryChunkItTouches() {
        PendingFlushes flushes = new PendingFlushes(mapping);

        flushes.record(CHUNK - 8, 16);
        flushes.record(10 * CHUNK, 1);

        assertThat(flushes.pendingChunks()).isEqualTo(3);
        assertThat(flushes.pending(0)).isTrue();
        assertThat(flushes.pending(1)).isTrue();
        assertThat(flushes.pending(10)).isTrue();
        assertThat(flushes.pending(2)).isFalse();
    }

    @Test
    void rangesAcrossBitmapWordsMarkEveryChunk() {
        PendingFlushes flushes = new PendingFlushes(mapping);

        flushes.record(60 * CHUNK, 70 * CHUNK);

        assertThat(flushes.pendingChunks()).isEqualTo(70);
        assertThat(flushes.pending(59)).isFalse();
        assertThat(flushes.pending(60)).isTrue();
        assertThat(flushes.pending(129)).isTrue();
        assertThat(flushes.pending(130)).isFalse();
    }

    @Test
    void emptyRangeMarksNothing() {
        PendingFlushes flushes = new PendingFlushes(mapping);

        flushes.record(5 * CHUNK, 0);

        assertThat(flushes.pendingChunks()).isZero();
    }

    @Test
    void drainMsyncsEveryPendingChunk() throws IOException {
        Path file = Files.createTempFile(DirtyPages.DISK_DIR, "pcache-pending-", ".img");
        try (Arena disk = Arena.ofShared();
             FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment region = channel.map(FileChannel.MapMode.READ_WRITE, 0, 512 * CHUNK, disk);
            PendingFlushes flushes = new PendingFlushes(region);
            region.asSlice(0, 512 * CHUNK).fill((byte) 1);
            assertThat(DirtyPages.dirtyKb(region)).as("dirty before the drain").isEqualTo(512 * CHUNK / 1024);
            flushes.record(0, 512 * CHUNK);
            flushes.record(3 * CHUNK, 5);

            flushes.drain();

            assertThat(flushes.pendingChunks()).isZero();
            assertThat(flushes.pending(0)).isFalse();
            assertThat(flushes.pending(511)).isFalse();
            assertThat(DirtyPages.dirtyKb(region)).as("dirty after the drain").isZero();
        } finally {
            Files.deleteIfExists(file);
        }
    }

    @Test
    void lastChunkIsClampedToTheMappingAndMsynced() throws IOException {
        Path file = Files.createTempFile(DirtyPages.DISK_DIR, "pcache-pending-odd-", ".img");
        try (Arena disk = Arena.ofShared();
             FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment odd = channel.map(FileChannel.MapMode.READ_WRITE, 0, CHUNK + 4096, disk);
            PendingFlushes flushes = new PendingFlushes(odd);
            odd.asSlice(CHUNK, 4096).fill((byte) 1);
            flushes.record(CHUNK, 4096);

            flushes.drain(); // an msync past the mapping's end would fail (ENOMEM) and fail the drain

            assertThat(flushes.pending(1)).isFalse();
            assertThat(DirtyPages.dirtyKb(odd)).as("dirty after the drain").isZero();
            assertThat(Files.size(file)).isEqualTo(CHUNK + 4096);
        } finally {
            Files.deleteIfExists(file);
        }
    }
}
