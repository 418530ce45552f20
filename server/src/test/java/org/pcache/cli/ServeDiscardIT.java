package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.nbd.ExternalTool;

/**
 * TRIM and WRITE_ZEROES through {@code pcache serve}, with nbdsh as the client: a 1 GiB zeroing takes no cache
 * segment, reads back as zeroes, survives kill -9 and reaches the backing file after a drain; a TRIM is passed down
 * as a punched hole in a file and as NBD_CMD_TRIM to nbdkit's memory plugin (nbdinfo --map shows the holes), and
 * {@code --discard ignore} keeps the data; {@code check} and {@code dump} read the discard record.
 */
class ServeDiscardIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;
    private NbdkitProcess nbdkit;

    @BeforeEach
    void files() throws Exception {
        ExternalTool.require("nbdsh");
        ExternalTool.require("nbdinfo");
        files = new ServeFiles(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (nbdkit != null) {
            nbdkit.close();
        }
        files.close();
    }

    @Test
    void aGibibyteOfZeroesTakesNoCacheSpaceSurvivesKill9AndDrainsToTheBackingFile() throws Exception {
        String[] serve = files.serve("2G");
        server = ServeProcess.start(dir, serve);
        nbdsh(server.uri(),
                "for at in (0, 512 << 20, (1 << 30) - (1 << 20), 1 << 30):",
                "    h.pwrite(b'\\x11' * (1 << 20), at)",
                "h.flush()");
        int usedBefore = segsUsed();

        nbdsh(server.uri(), "h.zero(1 << 30, 0)", "h.flush()");

        int usedAfter = segsUsed();
        System.out.println("segs_used before a 1 GiB WRITE_ZEROES: " + usedBefore + ", after: " + usedAfter);
        assertThat(usedAfter).as("segments used after 1 GiB of zeroes").isEqualTo(usedBefore);
        assertZeroesAndData(server.uri());

        server.kill();
        server = ServeProcess.start(dir, serve);
        assertZeroesAndData(server.uri());
        ServeProcess.Exit drain = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drain.status()).as("drain stderr: %s", drain.stderr()).isZero();
        assertThat(server.terminate()).isZero();
        server = null;

        for (long at : new long[] {0, 512 * MIB, GIB - MIB}) {
            assertThat(SectorData.readFile(files.backing, at, (int) MIB)).as("backing file at " + at)
                    .isEqualTo(new byte[(int) MIB]);
        }
        byte[] data = new byte[(int) MIB];
        Arrays.fill(data, (byte) 0x11);
        assertThat(SectorData.readFile(files.backing, GIB, (int) MIB)).as("backing file past the zeroes")
                .isEqualTo(data);
    }

    @Test
    void trimIsPassedDownAsAHoleInTheBackingFile() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M"));
        nbdsh(server.uri(),
                "h.pwrite(b'x' * (8 << 20), 0)",
                "h.flush()",
                "h.trim(4 << 20, 2 << 20)",
                "h.flush()",
                "assert h.pread(4 << 20, 2 << 20) == bytes(4 << 20)",
                "assert h.pread(2 << 20, 0) == b'x' * (2 << 20)");
        assertThat(ServeProcess.run(dir, "drain", "--admin", server.admin()).status()).isZero();

        assertThat(map(server.uri())).containsExactly("0 2097152 0 data", "2097152 4194304 3 hole,zero",
                "6291456 2097152 0 data", "8388608 58720256 3 hole,zero");
        assertThat(server.terminate()).isZero();
        server = null;
        assertThat(SectorData.readFile(files.backing, 3 * MIB, (int) MIB)).isEqualTo(new byte[(int) MIB]);
        assertThat(ServeProcess.run(dir, "check", "--cache", files.cache.toString()).status()).isZero();
        ServeProcess.Exit dump = ServeProcess.run(dir, "dump", "--cache", files.cache.toString());
        assertThat(dump.status()).isZero();
        assertThat(dump.stdout().lines()).contains("key off=4194304 len=2097152 kind=discard");
        assertThat(ServeProcess.run(dir, "dump", "--json", "--cache", files.cache.toString()).stdout())
                .contains("\"DISCARD\"");
    }

    @Test
    void discardIgnoreAcceptsTrimAndKeepsTheData() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--discard", "ignore"));
        nbdsh(server.uri(),
                "h.pwrite(b'x' * (8 << 20), 0)",
                "h.flush()",
                "h.trim(4 << 20, 2 << 20)",
                "h.flush()",
                "assert h.pread(8 << 20, 0) == b'x' * (8 << 20)");
        assertThat(ServeProcess.run(dir, "drain", "--admin", server.admin()).status()).isZero();
        assertThat(map(server.uri())).containsExactly("0 8388608 0 data", "8388608 58720256 3 hole,zero");
    }

    @Test
    void trimAndZeroReachAnNbdkitMemoryBackingAsHoles() throws Exception {
        nbdkit = NbdkitProcess.start(dir.resolve("nbdkit.log"), "memory", "64M");
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", nbdkit.uri(), "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
        nbdsh(server.uri(),
                "h.pwrite(b'y' * (8 << 20), 0)",
                "h.flush()",
                "h.trim(1 << 20, 1 << 20)",
                "h.zero(1 << 20, 4 << 20)",
                "h.flush()",
                "assert h.pread(1 << 20, 1 << 20) == bytes(1 << 20)",
                "assert h.pread(1 << 20, 4 << 20) == bytes(1 << 20)");
        assertThat(ServeProcess.run(dir, "drain", "--admin", server.admin()).status()).isZero();

        assertThat(map(nbdkit.uri())).as("the backing's own map").containsExactly("0 1048576 0 data",
                "1048576 1048576 3 hole,zero", "2097152 2097152 0 data", "4194304 1048576 3 hole,zero",
                "5242880 3145728 0 data", "8388608 58720256 3 hole,zero");
    }

    private void assertZeroesAndData(String uri) throws Exception {
        nbdsh(uri,
                "for at in (0, 512 << 20, (1 << 30) - (1 << 20)):",
                "    assert h.pread(1 << 20, at) == bytes(1 << 20), at",
                "assert h.pread(1 << 20, 1 << 30) == b'\\x11' * (1 << 20)");
    }

    private int segsUsed() throws Exception {
        String admin = server.admin();
        int colon = admin.lastIndexOf(':');
        try (AdminClient client = new AdminClient(new InetSocketAddress(admin.substring(0, colon),
                Integer.parseInt(admin.substring(colon + 1))))) {
            return client.status().segsUsed();
        }
    }

    private static List<String> map(String uri) throws Exception {
        return ExternalTool.run(TIMEOUT, "nbdinfo", "--map", uri).assertSuccess().stdout().lines()
                .map(line -> line.trim().replaceAll("\\s+", " ")).toList();
    }

    private static void nbdsh(String uri, String... lines) throws Exception {
        ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", uri, "-c", String.join("\n", lines))
                .assertSuccess();
    }
}
