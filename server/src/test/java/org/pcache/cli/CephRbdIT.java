package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.admin.StatusDocument;
import org.pcache.nbd.Durability;
import org.pcache.nbd.ExternalTool;
import org.pcache.nbd.NbdClient;
import org.pcache.nbd.NbdUri;

/**
 * pcache in front of a Ceph RBD image: {@code bench/ceph/cluster.sh} starts a one-node cluster (one monitor, one
 * BlueStore OSD) and qemu-storage-daemon's NBD export of an image; {@code pcache serve} fronts that export. Data is
 * written through pcache with nbdsh (seeded random 4 KiB writes, the expected image kept beside), flushed and
 * drained, and then read from the image by a second, independent reader, {@code rbd export}, with pcache stopped.
 * Each test writes its own region of the image and compares only that region. One test stops the export (the
 * qemu-storage-daemon) under a load of writes and starts it again on the same socket: pcache absorbs the writes
 * meanwhile and reconnects.
 */
class CephRbdIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final int MIB = 1 << 20;
    private static final String IMAGE_SIZE = "256M";
    private static final long REGION = 32L * MIB;
    private static final int BLOCK = 64 * 1024;
    private static final int WRITES_BEFORE = 100;
    private static final int WRITES_WHILE_DOWN = 100;
    private static final int WRITES_AFTER = 100;

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
        assertImageHolds(offset, expected, 1);
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
        assertImageHolds(offset, expected, 2);
    }

    @Test
    void theExportStoppedAndStartedAgainUnderLoadLosesNothing() throws Exception {
        long offset = 64L * MIB;
        server = serve();
        Path before = exportImage("before");
        byte[] model = new byte[(int) REGION];
        try (var in = Files.newInputStream(before)) {
            in.skipNBytes(offset);
            in.readNBytes(model, 0, model.length);
        }
        Files.delete(before);
        long seed = System.nanoTime();
        Random random = new Random(seed);
        try (NbdClient client = NbdClient.connect(NbdUri.parse(server.uri()));
             AdminClient admin = new AdminClient(address(server.admin()))) {
            AtomicInteger version = new AtomicInteger();
            AtomicBoolean stopWriting = new AtomicBoolean();
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                while (!stopWriting.get()) {
                    write(client, random, offset, model, version.incrementAndGet());
                }
            });
            awaitWrites(version, WRITES_BEFORE, writer);
            ExternalTool.run(TIMEOUT, "bash", script.toString(), "export-stop", clusterDir.resolve("ceph").toString())
                    .assertSuccess();
            awaitStatus(admin, status -> status.backing().disconnected(), "the backing shows as disconnected");
            awaitWrites(version, version.get() + WRITES_WHILE_DOWN, writer);
            StatusDocument down = admin.status();
            assertThat(down.backing().state()).isEqualTo("disconnected");
            assertThat(down.backing().lastError()).as("the reason is kept").isNotBlank();
            assertThat(down.dirtyBytes()).as("writes were absorbed while the export was gone").isPositive();
            assertThat(ServeProcess.run(dir, "status", "--admin", server.admin()).stdout())
                    .contains("backing disconnected, reconnecting");

            ExternalTool.run(TIMEOUT, "bash", script.toString(), "export-start", clusterDir.resolve("ceph").toString())
                    .assertSuccess();
            awaitStatus(admin, status -> "connected".equals(status.backing().state()),
                    "the backing shows as connected again");
            awaitWrites(version, version.get() + WRITES_AFTER, writer);
            stopWriting.set(true);
            writer.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            client.flush().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            assertThat(admin.status().backing().reconnects()).isEqualTo(1);
        }
        drain();
        assertThat(server.terminate()).isZero();
        server = null;
        Path expected = dir.resolve("expected-reconnect.bin");
        Files.write(expected, model);
        assertImageHolds(offset, expected, seed);
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

    /**
     * Writes one 64 KiB block of {@link SectorData} at a random block of {@code [offset, offset + REGION)} through
     * pcache and records it in {@code model} (the region's expected content) once pcache acknowledged it.
     */
    private static void write(NbdClient client, Random random, long offset, byte[] model, int version) {
        int block = random.nextInt((int) (REGION / BLOCK));
        byte[] data = SectorData.of(offset + (long) block * BLOCK, BLOCK, version);
        try {
            client.write(offset + (long) block * BLOCK, MemorySegment.ofArray(data), Durability.BUFFERED)
                    .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("write of block " + block + " through pcache failed", e);
        }
        System.arraycopy(data, 0, model, block * BLOCK, BLOCK);
    }

    private static void awaitWrites(AtomicInteger version, int count, CompletableFuture<Void> writer)
            throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (version.get() < count) {
            if (writer.isDone()) {
                writer.get(); // rethrows the writer's failure
            }
            assertThat(System.nanoTime()).as("%d writes done", count).isLessThan(deadline);
            Thread.sleep(10);
        }
    }

    private static void awaitStatus(AdminClient admin, Predicate<StatusDocument> condition, String what)
            throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.test(admin.status())) {
            assertThat(System.nanoTime()).as(what).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    private void drain() throws Exception {
        ServeProcess.Exit drain = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drain.status()).as("stderr: %s", drain.stderr()).isZero();
        assertThat(drain.stdout().lines().toList().getLast()).startsWith("drain: done");
    }

    private void assertImageHolds(long offset, Path expected, long seed) throws Exception {
        Path image = exportImage("after");
        byte[] region = new byte[(int) REGION];
        try (var in = Files.newInputStream(image)) {
            in.skipNBytes(offset);
            in.readNBytes(region, 0, region.length);
        }
        byte[] want = Files.readAllBytes(expected);
        int mismatch = Arrays.mismatch(region, want);
        assertThat(mismatch).as("first differing byte of the image at %d (-1: none; seed %d)", offset + mismatch,
                seed).isEqualTo(-1);
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
