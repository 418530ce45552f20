package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;

/**
 * {@code pcache drain}, end to end, as dm-pcache's test case 13 does it: write, drain until dirty_tail == key_head,
 * stop, throw the cache away, and find every byte on the backing device alone, read both straight from the file and
 * through a server on a freshly formatted cache. The backing file is served by nbdkit, whose error filter fails
 * every write while a trigger file exists: writeback gets nothing through until the test removes it, so the data is
 * all dirty when the drain starts and the drain has all of it to do.
 */
class DrainIT {

    private static final int MIB = 1 << 20;
    /** Three extents, one overwritten in part, so the log holds more than the device ends up with. */
    private static final long[][] EXTENTS = {{0, 8 * MIB, 1}, {20 * MIB, 6 * MIB, 2}, {2 * MIB, 3 * MIB, 3}};

    @TempDir
    Path dir;

    private ServeFiles files;
    private NbdkitProcess nbdkit;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        files = new ServeFiles(dir);
        try (RandomAccessFile backing = new RandomAccessFile(files.backing.toFile(), "rw")) {
            backing.setLength(64L * MIB);
        }
        Files.createFile(failWrites());
        nbdkit = NbdkitProcess.start(dir.resolve("nbdkit.log"), "file", files.backing.toString(), "--filter=error",
                "error-pwrite-rate=100%", "error-pwrite-file=" + failWrites());
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", nbdkit.uri(), "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
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
    void drainWritesEverythingBackSoTheBackingFileAloneHoldsTheDataAfterAReformat() throws Exception {
        for (long[] extent : EXTENTS) {
            SectorData.writeAndFlush(server.uri(), extent[0], (int) extent[1], (int) extent[2]);
        }
        try (AdminClient client = new AdminClient(address(server.admin()))) {
            assertThat(client.status().dirtyBytes()).as("writeback got nothing through: all of it is dirty")
                    .isEqualTo(17L * MIB);
        }
        Files.delete(failWrites());

        ServeProcess.Exit drain = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drain.status()).as("stderr: %s", drain.stderr()).isZero();
        assertThat(drain.stderr()).isEmpty();
        List<String> lines = drain.stdout().lines().toList();
        assertThat(lines).as("plain lines, not a redrawn bar, when stdout is not a terminal")
                .allMatch(line -> line.startsWith("drain: ") && !line.contains("\r"));
        assertThat(lines.getLast()).matches("drain: done, dirty_tail (\\d+:\\d+) == key_head \\1");
        String[] status = ServeProcess.run(dir, "status", "--admin", server.admin()).stdout().strip().split(" ");
        assertThat(status[7]).as("dirty_tail == key_head").isEqualTo(status[6]);
        assertThat(server.terminate()).isZero();
        nbdkit.close();
        nbdkit = null;

        byte[] expected = expectedImage();
        assertThat(SectorData.readFile(files.backing, 0, expected.length)).as("the backing file alone")
                .isEqualTo(expected);
        Files.delete(files.cache);
        server = ServeProcess.start(dir, files.serve("64M"));
        assertThat(server.stderr()).contains("formatted cache");
        assertThat(SectorData.read(server.uri(), 0, expected.length)).as("through a new, empty cache")
                .isEqualTo(expected);
    }

    /** While this file exists, nbdkit fails every write. */
    private Path failWrites() {
        return dir.resolve("fail-writes");
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    /** What the device holds after {@link #EXTENTS}, later writes winning, zeroes elsewhere. */
    private static byte[] expectedImage() {
        byte[] image = new byte[26 * MIB];
        for (long[] extent : EXTENTS) {
            byte[] data = SectorData.of(extent[0], (int) extent[1], (int) extent[2]);
            System.arraycopy(data, 0, image, (int) extent[0], data.length);
        }
        return image;
    }
}
