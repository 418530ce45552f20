package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * How a mapped region fails: an msync that fails once fails every later drain, even one whose msync would succeed
 * (after a failed msync the kernel may have dropped the dirty pages, so a later success proves nothing); a memory
 * access that faults (SIGBUS, which the JVM raises as an InternalError) under a truncated file is a
 * {@link RegionFailedException} that says so, on stores and on reads.
 *
 * <p>The msync failure is real: a page of the mapping is unmapped behind the region's back (msync then fails with
 * ENOMEM), and mapped again with anonymous memory (msync succeeds again) before the next drain.
 */
class MappedPmemRegionFailureTest {

    private static final long MIB = 1 << 20;
    private static final long PAGE = 4096;
    private static final long CHUNK = 64 * 1024;
    private static final int PROT_READ_WRITE = 0x3;
    private static final int MAP_PRIVATE_FIXED_ANONYMOUS = 0x02 | 0x10 | 0x20;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MUNMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("munmap"),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
    private static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("mmap"),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));

    private Path dir;

    @BeforeEach
    void createDir() throws IOException {
        dir = Files.createTempDirectory(Path.of("/dev/shm"), "pcache-pmem-failure-");
    }

    @AfterEach
    void deleteDir() throws IOException {
        try (var files = Files.list(dir)) {
            for (Path file : files.toList()) {
                Files.delete(file);
            }
        }
        Files.delete(dir);
    }

    @Test
    void aFailedMsyncFailsEveryLaterDrainEvenWhenMsyncWouldSucceedAgain() throws Throwable {
        try (MappedPmemRegion region = MappedPmemRegion.open(dir.resolve("region"), 4 * MIB)) {
            assertThat(region.mode()).isEqualTo(PersistenceMode.MSYNC);
            MemorySegment data = MemorySegment.ofArray(new byte[512]);
            region.write(0, data, 0, 512);
            region.flush(0, 512);
            region.write(8 * CHUNK, data, 0, 512);
            region.flush(8 * CHUNK, 512);
            long hole = region.view(8 * CHUNK, PAGE).address();
            assertThat((int) MUNMAP.invokeExact(MemorySegment.ofAddress(hole), PAGE)).isZero();

            assertThatThrownBy(region::drain).isInstanceOf(RegionFailedException.class)
                    .hasMessageContaining("msync of [" + 8 * CHUNK);

            MemorySegment mapped = (MemorySegment) MMAP.invokeExact(MemorySegment.ofAddress(hole), PAGE,
                    PROT_READ_WRITE, MAP_PRIVATE_FIXED_ANONYMOUS, -1, 0L);
            assertThat(mapped.address()).as("the hole is mapped again").isEqualTo(hole);
            region.write(0, data, 0, 512);
            region.flush(0, 512);
            assertThatThrownBy(region::drain).as("a drain after the failed one, whose msync would succeed")
                    .isInstanceOf(RegionFailedException.class).hasMessageContaining("an earlier msync failed");
            assertThatThrownBy(() -> region.persist(0, 512)).isInstanceOf(RegionFailedException.class);
        }
    }

    @Test
    void aDrainAfterTheFileWasTruncatedFailsAndNamesTheTruncation() throws IOException {
        Path file = dir.resolve("truncated");
        long size = 4L << 20;
        try (MappedPmemRegion region = MappedPmemRegion.open(file, size)) {
            region.write(0, MemorySegment.ofArray(new byte[4096]), 0, 4096);
            region.flush(0, 4096);
            try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
                raf.setLength(size / 2);
            }

            // No access of the lost half: the drain itself must see that the mapping outgrew its file.
            assertThatThrownBy(region::drain).isInstanceOf(RegionFailedException.class)
                    .hasMessageContaining("truncated to " + size / 2);
        }
    }
}
