package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * Stopping {@code pcache serve} the hard way and the polite way, then starting it again on the same files: nbdsh
 * writes version A of a range and flushes, then writes version B over part of it without flushing.
 *
 * <ul>
 * <li>kill -9: every flushed byte reads back; every unflushed sector reads back as A or B, never anything else.
 * <li>SIGTERM: exit status 0, and B reads back exactly, since stopping closes every kset.
 * </ul>
 */
class ServeCrashIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int SECTOR = 512;
    private static final int A_LENGTH = 8 << 20;
    private static final int B_OFFSET = 2 << 20;
    private static final int B_LENGTH = 2 << 20;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        ExternalTool.require("nbdsh");
        ExternalTool.require("nbdcopy");
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("32M"));
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
    void killNineKeepsEveryFlushedByteAndUnflushedSectorsAreOldOrNew() throws Exception {
        writeFlushedAThenUnflushedB();
        server.kill();
        server = ServeProcess.start(dir, files.serve("32M"));

        byte[] image = readBack();
        for (int offset = 0; offset < A_LENGTH; offset += SECTOR) {
            boolean overwritten = offset >= B_OFFSET && offset < B_OFFSET + B_LENGTH;
            byte[] sector = Arrays.copyOfRange(image, offset, offset + SECTOR);
            if (overwritten) {
                assertThat(Arrays.equals(sector, sector(offset, 'A')) || Arrays.equals(sector, sector(offset, 'B')))
                        .as("unflushed sector at %d reads back as A or B", offset).isTrue();
            } else {
                assertThat(sector).as("flushed sector at %d", offset).isEqualTo(sector(offset, 'A'));
            }
        }
    }

    @Test
    void sigtermExitsZeroAndKeepsUnflushedWrites() throws Exception {
        writeFlushedAThenUnflushedB();
        assertThat(server.terminate()).as("exit status after SIGTERM").isZero();
        assertThat(server.stderr()).contains("pcache stopped");
        server = ServeProcess.start(dir, files.serve("32M"));

        byte[] image = readBack();
        for (int offset = 0; offset < A_LENGTH; offset += SECTOR) {
            char version = offset >= B_OFFSET && offset < B_OFFSET + B_LENGTH ? 'B' : 'A';
            assertThat(Arrays.copyOfRange(image, offset, offset + SECTOR)).as("sector at %d", offset)
                    .isEqualTo(sector(offset, version));
        }
    }

    /** Version A of [0, 8 MiB) flushed, then version B of [2 MiB, 4 MiB) not flushed; nbdsh exits without flushing. */
    private void writeFlushedAThenUnflushedB() throws Exception {
        Path a = dir.resolve("a.bin");
        Path b = dir.resolve("b.bin");
        Files.write(a, range(0, A_LENGTH, 'A'));
        Files.write(b, range(B_OFFSET, B_LENGTH, 'B'));
        String script = String.join("\n",
                "a = open('" + a + "', 'rb').read()",
                "for i in range(0, len(a), 1 << 20):",
                "    h.pwrite(a[i:i + (1 << 20)], i)",
                "h.flush()",
                "b = open('" + b + "', 'rb').read()",
                "for i in range(0, len(b), 256 << 10):",
                "    h.pwrite(b[i:i + (256 << 10)], " + B_OFFSET + " + i)",
                "print('written')");
        String out = ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", script)
                .assertSuccess().stdout();
        assertThat(out).contains("written");
    }

    private byte[] readBack() throws Exception {
        Path copy = dir.resolve("readback.img");
        Files.deleteIfExists(copy);
        ExternalTool.run(TIMEOUT, "nbdcopy", server.uris().get(1), copy.toString()).assertSuccess();
        return Files.readAllBytes(copy);
    }

    private static byte[] range(int offset, int length, char version) {
        byte[] bytes = new byte[length];
        for (int at = 0; at < length; at += SECTOR) {
            System.arraycopy(sector(offset + at, version), 0, bytes, at, SECTOR);
        }
        return bytes;
    }

    /** The 512 bytes of {@code version} at {@code offset}: different for every sector and version. */
    private static byte[] sector(int offset, char version) {
        ByteBuffer buffer = ByteBuffer.allocate(SECTOR).order(ByteOrder.LITTLE_ENDIAN);
        for (int word = 0; word < SECTOR / Long.BYTES; word++) {
            buffer.putLong((offset + word * 8L) * 0x9E3779B97F4A7C15L ^ version);
        }
        return buffer.array();
    }
}
