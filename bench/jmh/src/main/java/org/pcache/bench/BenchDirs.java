package org.pcache.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Where benchmarks put their files: regions on tmpfs, backing files on the disk. */
final class BenchDirs {

    private BenchDirs() {
    }

    /** PCACHE_BENCH_SHM, default /dev/shm: region files (emulated pmem). */
    static Path shm() {
        return Path.of(System.getenv().getOrDefault("PCACHE_BENCH_SHM", "/dev/shm"));
    }

    /** PCACHE_BENCH_DISK, default the system temp directory (ext4 here): backing files. */
    static Path disk() {
        return Path.of(System.getenv().getOrDefault("PCACHE_BENCH_DISK", System.getProperty("java.io.tmpdir")));
    }

    /** A fresh name in {@code dir} with no file behind it: a region opened there is created sparse. */
    static Path unusedFile(Path dir, String prefix) throws IOException {
        Path file = Files.createTempFile(dir, prefix, ".img");
        Files.delete(file);
        return file;
    }

    /** A new sparse file of {@code size} bytes in {@code dir}. */
    static Path sparseFile(Path dir, String prefix, long size) throws IOException {
        Path file = Files.createTempFile(dir, prefix, ".img");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.wrap(new byte[1]), size - 1);
        }
        return file;
    }
}
