package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * Any alignment and any length the protocol allows, through a real {@code pcache serve} with real clients: byte
 * reads and writes at odd offsets (nbdsh, qemu-io), qemu-img convert of a qcow2 with holes, and nbdcopy of a sparse
 * 2 GiB image, whose holes arrive as WRITE_ZEROES far longer than 32 MiB.
 */
class ServeBlockSizesIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    private void serve(String backingSize) throws Exception {
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve(backingSize));
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (files != null) {
            files.close();
        }
    }

    @Test
    void nbdshWritesAndReadsSingleBytesAtOddOffsets() throws Exception {
        ExternalTool.require("nbdsh");
        serve("4M");
        String script = String.join("\n",
                "size = h.get_size()",
                "assert h.get_block_size(nbd.SIZE_MINIMUM) == 1, h.get_block_size(nbd.SIZE_MINIMUM)",
                "h.pwrite(b'\\xaa' * 4096, 0)",
                "for off in [1, 3, 510, 511, 512, 513, 1023, 4095, size - 1]:",
                "    h.pwrite(bytes([off % 251 + 1]), off)",
                "for off in [1, 3, 510, 511, 512, 513, 1023, 4095, size - 1]:",
                "    assert h.pread(1, off) == bytes([off % 251 + 1]), off",
                "h.pwrite(b'xyz', 511)",
                "assert h.pread(5, 510) == bytes([510 % 251 + 1]) + b'xyz\\xaa'",
                "assert h.pread(2, 0) == b'\\xaa' + bytes([2])",
                "h.zero(3, 1030)",
                "assert h.pread(5, 1029) == b'\\xaa' + b'\\0' * 3 + b'\\xaa'",
                "h.flush()",
                "print('ok')");
        ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", script)
                .assertSuccess();

        // Read back after a restart: the partial-sector writes reached the cache as whole sectors.
        assertThat(server.terminate()).isZero();
        server = ServeProcess.start(dir, files.serve("4M"));
        ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", String.join("\n",
                "assert h.pread(6, 509) == b'\\xaa' + bytes([510 % 251 + 1]) + b'xyz' + b'\\xaa'",
                "assert h.pread(1, h.get_size() - 1) == bytes([(h.get_size() - 1) % 251 + 1])")).assertSuccess();
    }

    @Test
    void qemuIoWritesAndReadsUnalignedRanges() throws Exception {
        ExternalTool.require("qemu-io");
        serve("4M");
        String out = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uris().get(1),
                "-c", "write -P 0x11 0 8192",
                "-c", "write -P 0x22 1 3",
                "-c", "write -P 0x33 1000 3000",
                "-c", "read -P 0x11 0 1",
                "-c", "read -P 0x22 1 3",
                "-c", "read -P 0x11 4 996",
                "-c", "read -P 0x33 1000 3000",
                "-c", "read -P 0x11 4000 4192").assertSuccess().stdout();
        assertThat(out).doesNotContain("Pattern verification failed").doesNotContain("error");
    }

    @Test
    void qemuImgConvertsAQcow2WithHolesOntoPcache() throws Exception {
        ExternalTool.require("qemu-img");
        ExternalTool.require("qemu-io");
        serve("256M");
        Path qcow2 = dir.resolve("holes.qcow2");
        ExternalTool.run(TIMEOUT, "qemu-img", "create", "-f", "qcow2", qcow2.toString(), "256M").assertSuccess();
        ExternalTool.run(TIMEOUT, "qemu-io", "-f", "qcow2", qcow2.toString(), "-c", "write -P 0x5a 1M 3M",
                "-c", "write -P 0x6b 100M 1M", "-c", "write -P 0x7c 255M 1M").assertSuccess();
        ExternalTool.run(TIMEOUT, "qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", qcow2.toString(),
                server.uri()).assertSuccess();
        String compare = ExternalTool.run(TIMEOUT, "qemu-img", "compare", "-f", "qcow2", "-F", "raw",
                qcow2.toString(), server.uri()).assertSuccess().stdout();
        assertThat(compare).contains("Images are identical");
    }

    @Test
    void nbdcopyOfASparse2GibImageOntoPcacheAndBackIsIdentical() throws Exception {
        ExternalTool.require("nbdcopy");
        serve("2G");
        Path source = dir.resolve("sparse.img");
        SplittableRandom random = new SplittableRandom(2026);
        try (RandomAccessFile file = new RandomAccessFile(source.toFile(), "rw")) {
            file.setLength(2L << 30);
            for (long at : new long[] {0, 700L << 20, (1500L << 20) + 4097, (2L << 30) - (3 << 20)}) {
                byte[] data = new byte[3 << 20];
                random.nextBytes(data);
                file.seek(at);
                file.write(data);
            }
        }
        ExternalTool.run(TIMEOUT, "nbdcopy", "--flush", source.toString(), server.uri()).assertSuccess();
        Path copy = dir.resolve("copy.img");
        ExternalTool.run(TIMEOUT, "nbdcopy", server.uri(), copy.toString()).assertSuccess();
        assertThat(Files.size(copy)).isEqualTo(2L << 30);
        assertThat(Files.mismatch(source, copy)).as("first differing byte").isEqualTo(-1);
    }
}
