package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * {@code pcache serve --backing-direct} and {@code --read-ahead}: the backing file is opened with O_DIRECT (the flag
 * shows in the server's descriptor table), misses and writes through the cache round-trip over it, and values the
 * options cannot take are refused as usage errors. The backing lives in a disk-backed temporary directory: tmpfs
 * refuses O_DIRECT.
 */
class ServeBackingDirectIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    /** O_DIRECT in the octal flags of /proc/PID/fdinfo on x86-64 and arm64's generic value (040000 / 0200000). */
    private static final long O_DIRECT_X86 = 040000;
    private static final long O_DIRECT_ARM = 0200000;

    @TempDir
    Path dir;

    private ServeFiles files;

    @BeforeEach
    void files() throws IOException {
        files = new ServeFiles(dir);
    }

    @AfterEach
    void cleanUp() throws IOException {
        files.close();
    }

    @Test
    void aDirectBackingIsOpenedWithODirectAndServesMissesAndWrites() throws Exception {
        ExternalTool.require("qemu-io");
        try (RandomAccessFile backing = new RandomAccessFile(files.backing.toFile(), "rw")) {
            byte[] pattern = new byte[1 << 20];
            Arrays.fill(pattern, (byte) 0x5a);
            backing.setLength(64L << 20);
            backing.write(pattern);
        }
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M", "--backing-direct",
                "--read-ahead", "256K"))) {
            assertThat(directDescriptors(server.pid(), files.backing)).as("descriptors of the backing with O_DIRECT")
                    .isPositive();
            ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uri(),
                    "-c", "read -P 0x5a 0 1M", "-c", "read -P 0 1M 1M", "-c", "write -P 0x33 4096 8192",
                    "-c", "flush", "-c", "read -P 0x33 4096 8192", "-c", "read -P 0x5a 12288 4096")
                    .assertSuccess();
            assertThat(server.terminate()).isZero();
        }
    }

    @Test
    void backingDirectOnAnNbdBackingIsAUsageError() throws Exception {
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", "nbd://127.0.0.1:1/x",
                "--backing-direct").assertRefused(2, "--backing-direct applies to a file or block device backing");
    }

    @Test
    void aReadAheadThatIsNotAWholeNumberOfSectorsIsAUsageError() throws Exception {
        ServeProcess.run(dir, files.serve("64M", "--read-ahead", "1000"))
                .assertRefused(2, "--read-ahead 1000 is out of range");
    }

    /** How many of {@code pid}'s descriptors open {@code file} with O_DIRECT. */
    private static long directDescriptors(long pid, Path file) throws IOException {
        Path fds = Path.of("/proc", Long.toString(pid), "fd");
        Path target = file.toRealPath();
        long direct = 0;
        try (Stream<Path> links = Files.list(fds)) {
            for (Path link : links.toList()) {
                Path points;
                try {
                    points = Files.readSymbolicLink(link);
                } catch (IOException e) {
                    continue; // closed meanwhile
                }
                if (!points.equals(target)) {
                    continue;
                }
                String info = Files.readString(Path.of("/proc", Long.toString(pid), "fdinfo",
                        link.getFileName().toString()));
                long flags = info.lines().filter(line -> line.startsWith("flags:"))
                        .mapToLong(line -> Long.parseLong(line.substring("flags:".length()).trim(), 8))
                        .findFirst().orElse(0);
                if ((flags & (O_DIRECT_X86 | O_DIRECT_ARM)) != 0) {
                    direct++;
                }
            }
        }
        return direct;
    }
}
