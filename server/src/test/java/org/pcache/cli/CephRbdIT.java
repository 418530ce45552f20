package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.nbd.ExternalTool;

/**
 * pcache in front of a Ceph RBD image: {@code bench/ceph/cluster.sh} starts a one-node cluster (one monitor, one
 * BlueStore OSD) and qemu-storage-daemon's NBD export of an image; {@code pcache serve} fronts that export. Data is
 * written through pcache with nbdsh (seeded random 4 KiB writes, the expected image kept beside), flushed and
 * drained, and then read from the image by a second, independent reader, {@code rbd export}, with pcache stopped.
 * Each test writes its own region of the image and compares only that region.
 */
class CephRbdIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final int MIB = 1 << 20;
    private static final String IMAGE_SIZE = "256M";
    private static final long REGION = 32L * MIB;

    @TempDir
    static Path clusterDir;
    private static Path script;
    private static String export;

    @TempDir
    Path dir;
    private ServeFiles files;
    private ServeProcess server;

    @BeforeAll
    static void startCluster() throws Exception {
        for (String program : new String[] {"ceph-mon", "ceph-osd", "rbd", "qemu-storage-daemon", "nbdsh"}) {
            ExternalTool.require(program);
        }
        script = repository().resolve("bench/ceph/cluster.sh");
        ExternalTool.Result started = ExternalTool.run(TIMEOUT, Map.of("IMAGE_SIZE", IMAGE_SIZE), "bash",
                script.toString(), "start", clusterDir.resolve("ceph").toString()).assertSuccess();
        export = started.stdout().strip();
        assertThat(export).as(started.stderr()).startsWith("nbd+unix://");
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (script != null && Files.isDirectory(clusterDir.resolve("ceph/pids"))) {
            ExternalTool.run(TIMEOUT, "bash", script.toString(), "stop", clusterDir.resolve("ceph").toString())
                    .assertSuccess();
        }
    }

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        files.close();
    }

    @Test
    void writtenFlushedAndDrainedDataIsOnTheImageForRbdExport() throws Exception {
        long offset = 16L * MIB;
        server = serve();
        Path expected = writeRandomBlocks(offset, 1, 2048);
        drain();
        assertThat(server.terminate()).isZero();
        server = null;
        assertImageHolds(offset, expected);
    }

    @Test
    void killNineWithDirtyDataThenRestartAndDrainLeavesTheImageExact() throws Exception {
        long offset = 128L * MIB;
        server = serve();
        Path expected = writeRandomBlocks(offset, 2, 8192);
        long dirty;
        try (AdminClient client = new AdminClient(address(server.admin()))) {
            dirty = client.status().dirtyBytes();
        }
        server.kill();
        assertThat(dirty).as("dirty bytes when pcache was killed").isPositive();

        server = serve();
        drain();
        assertThat(server.terminate()).isZero();
        server = null;
        assertImageHolds(offset, expected);
    }

    private ServeProcess serve() throws Exception {
        return ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", export, "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
    }

    /**
     * Writes {@code count} 4 KiB blocks of seeded random data at random 4 KiB offsets of {@code [offset, offset +
     * REGION)} through pcache with nbdsh, flushes, and returns a file with what the region must then hold (what the
     * image held there before, overwritten by the blocks).
     */
    private Path writeRandomBlocks(long offset, long seed, int count) throws Exception {
        Path before = exportImage("before");
        Path expected = dir.resolve("expected-" + seed + ".bin");
        String python = String.join("\n",
                "import random",
                "rng = random.Random(" + seed + ")",
                "f = open('" + before + "', 'rb'); f.seek(" + offset + "); region = bytearray(f.read(" + REGION
                        + ")); f.close()",
                "for _ in range(" + count + "):",
                "    at = rng.randrange(" + REGION / 4096 + ") * 4096",
                "    block = rng.randbytes(4096)",
                "    h.pwrite(block, " + offset + " + at)",
                "    region[at:at + 4096] = block",
                "h.flush()",
                "open('" + expected + "', 'wb').write(region)",
                "print('OK')");
        String out = ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c",
                python).assertSuccess().stdout();
        assertThat(out).as("seed %d", seed).endsWith("OK\n");
        Files.delete(before);
        return expected;
    }

    private void drain() throws Exception {
        ServeProcess.Exit drain = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drain.status()).as("stderr: %s", drain.stderr()).isZero();
        assertThat(drain.stdout().lines().toList().getLast()).startsWith("drain: done");
    }

    private void assertImageHolds(long offset, Path expected) throws Exception {
        Path image = exportImage("after");
        byte[] region = new byte[(int) REGION];
        try (var in = Files.newInputStream(image)) {
            in.skipNBytes(offset);
            in.readNBytes(region, 0, region.length);
        }
        byte[] want = Files.readAllBytes(expected);
        int mismatch = Arrays.mismatch(region, want);
        assertThat(mismatch).as("first differing byte of the image at %d (-1: none)", offset + mismatch)
                .isEqualTo(-1);
    }

    /** The whole image, read by {@code rbd export} straight from RADOS. */
    private Path exportImage(String name) throws Exception {
        Path file = dir.resolve("image-" + name + ".raw");
        ExternalTool.run(TIMEOUT, "rbd", "-c", clusterDir.resolve("ceph/ceph.conf").toString(), "export",
                "rbd/pcache", file.toString()).assertSuccess();
        return file;
    }

    private static Path repository() {
        Path directory = Path.of("").toAbsolutePath();
        while (!Files.exists(directory.resolve("bench/ceph/cluster.sh"))) {
            directory = directory.getParent();
            assertThat(directory).as("bench/ceph/cluster.sh above the working directory").isNotNull();
        }
        return directory;
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }
}
