package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Pre-faulting at open: what gets populated (the file's allocated bytes, from stat), and that nothing changes. */
class MappingPrefaultTest {
    private static final long MIB = 1024 * 1024;

    private Path shmDir;
    private Path diskDir;

    @BeforeEach
    void createDirs() throws IOException {
        shmDir = Files.createTempDirectory(Path.of("/dev/shm"), "pcache-prefault-test-");
        diskDir = Files.createTempDirectory(DirtyPages.DISK_DIR, "pcache-prefault-test-");
    }

    @AfterEach
    void deleteDirs() throws IOException {
        for (Path dir : new Path[] {shmDir, diskDir}) {
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(file);
                }
            }
        }
    }

    /** Bytes the file system allocated to {@code file} ({@code st_blocks} * 512). */
    private static long allocatedBytes(Path file) throws IOException, InterruptedException {
        Process stat = new ProcessBuilder("stat", "-c", "%b", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        assertThat(stat.waitFor()).as("stat %s: %s", file, out).isZero();
        return Long.parseLong(out) * 512;
    }

    @Test
    void openPopulatesTheRequestedStartOfASparseFileByMadvise() throws Exception {
        Path file = shmDir.resolve("cache.img");
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 64 * MIB, 8 * MIB)) {
            assertThat(allocatedBytes(file)).isBetween(8 * MIB, 9 * MIB);
            assertThat(region.prefault(16 * MIB, true)).isEqualTo(MappingPrefault.Method.MADVISE);
            assertThat(allocatedBytes(file)).isBetween(16 * MIB, 17 * MIB);
        }
    }

    @Test
    void defaultOpenOfAOneTebibyteSparseTmpfsFilePopulatesOnlyTheDefaultStart() throws Exception {
        Path file = shmDir.resolve("huge.img");
        long size = 1L << 40;
        try (MappedPmemRegion region = MappedPmemRegion.open(file, size)) {
            assertThat(region.size()).isEqualTo(size);
            assertThat(allocatedBytes(file)).isBetween(MappedPmemRegion.DEFAULT_PREFAULT_BYTES,
                    MappedPmemRegion.DEFAULT_PREFAULT_BYTES + MIB);
        }
    }

    @Test
    void defaultOpenOfAFileOnADiskFileSystemPopulatesNothing() throws Exception {
        Path file = diskDir.resolve("cache.img");
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 64 * MIB)) {
            assertThat(allocatedBytes(file)).isZero();
        }
    }

    @Test
    void zeroPrefaultPopulatesNothing() throws Exception {
        Path file = shmDir.resolve("cache.img");
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 64 * MIB, 0)) {
            assertThat(allocatedBytes(file)).isZero();
        }
    }

    @Test
    void touchLoopPopulatesAndKeepsWhatTheRegionHolds() throws Exception {
        Path file = shmDir.resolve("cache.img");
        byte[] pattern = new byte[(int) (3 * MIB)];
        for (int i = 0; i < pattern.length; i++) {
            pattern[i] = (byte) (i * 31 + 7);
        }
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 64 * MIB, 0)) {
            region.write(MIB, MemorySegment.ofArray(pattern), 0, pattern.length);
            region.persist(MIB, pattern.length);
        }
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 64 * MIB, 0)) {
            assertThat(region.prefault(10 * MIB + 1, false)).isEqualTo(MappingPrefault.Method.TOUCH);
            // Rounded up to a whole page.
            assertThat(allocatedBytes(file)).isBetween(10 * MIB + 4096, 11 * MIB);
            MemorySegment back = Arena.ofAuto().allocate(pattern.length);
            region.read(MIB, back, 0, pattern.length);
            assertThat(back.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(pattern);
            MemorySegment start = Arena.ofAuto().allocate(MIB);
            region.read(0, start, 0, MIB);
            assertThat(start.toArray(ValueLayout.JAVA_BYTE)).containsOnly((byte) 0);
        }
    }

    @Test
    void prefaultPastTheEndStopsAtTheRegionSize() throws Exception {
        Path file = shmDir.resolve("cache.img");
        try (MappedPmemRegion region = MappedPmemRegion.open(file, 16 * MIB, Long.MAX_VALUE)) {
            assertThat(allocatedBytes(file)).isEqualTo(16 * MIB);
        }
    }
}
