package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
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
    private static final int WRITES_ACROSS_STOP = 200;
    private static final int WRITES_WHILE_DOWN = 100;
    private static final int WRITES_ACROSS_START = 200;
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

    /**
     * The export stopped and started again while a writer keeps writing. The writer is throttled (at most one 64 KiB
     * write per {@link WriteLoad#GAP_NANOS}) and only writes what each step allows, 700 blocks (44 MiB) in all, so
     * however long the export takes to stop and start on a loaded machine the writes can never fill the 512 MiB cache:
     * every one must be absorbed. (Unthrottled, the writer outruns writeback to the image by ten times, and a cache
     * full of overwrites of the region rightly makes writes wait for the export.) The export is started again in a
     * finally, so a failure here never leaves it stopped for the next test.
     */
    @Test
    void theExportStoppedAndStartedAgainUnderLoadLosesNothing() throws Exception {
        long offset = 64L * MIB;
        server = serve();
        byte[] model = region(exportImage("before"), offset);
        long seed = System.nanoTime();
        try (NbdClient client = NbdClient.connect(NbdUri.parse(server.uri()));
             AdminClient admin = new AdminClient(address(server.admin()));
             WriteLoad writer = new WriteLoad(client, admin, new Random(seed), offset, model, seed)) {
            writer.allowAndAwait(WRITES_BEFORE, "before the export stops");
            boolean stopped = true;
            try {
                writer.allow(WRITES_ACROSS_STOP);
                exportCommand("export-stop");
                awaitStatus(admin, status -> status.backing().disconnected(), "the backing shows as disconnected");
                writer.allowAndAwait(WRITES_WHILE_DOWN, "while the export is stopped");
                StatusDocument down = admin.status();
                assertThat(down.backing().state()).isEqualTo("disconnected");
                assertThat(down.backing().lastError()).as("the reason is kept").isNotBlank();
                assertThat(down.dirtyBytes()).as("writes were absorbed while the export was gone").isPositive();
                assertThat(ServeProcess.run(dir, "status", "--admin", server.admin()).stdout())
                        .contains("backing disconnected, reconnecting");
                writer.allow(WRITES_ACROSS_START);
                exportCommand("export-start");
                stopped = false;
            } finally {
                if (stopped) {
                    startExportAfterAFailure();
                }
            }
            awaitStatus(admin, status -> "connected".equals(status.backing().state()),
                    "the backing shows as connected again");
            writer.allowAndAwait(WRITES_AFTER, "after the export is back");
            writer.close();
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

    private static void exportCommand(String command) throws Exception {
        ExternalTool.run(TIMEOUT, "bash", script.toString(), command, clusterDir.resolve("ceph").toString())
                .assertSuccess();
    }

    /** Best effort, so the next test finds the export running; the test's own failure is what is reported. */
    private static void startExportAfterAFailure() throws Exception {
        ExternalTool.Result started = ExternalTool.run(TIMEOUT, "bash", script.toString(), "export-start",
                clusterDir.resolve("ceph").toString());
        if (started.exit() != 0) {
            System.err.println("CephRbdIT: export-start after a failure: " + started.stderr());
        }
    }

    private static byte[] region(Path image, long offset) throws IOException {
        byte[] region = new byte[(int) REGION];
        try (var in = Files.newInputStream(image)) {
            in.skipNBytes(offset);
            in.readNBytes(region, 0, region.length);
        }
        Files.delete(image);
        return region;
    }

    private static void awaitStatus(AdminClient admin, Predicate<StatusDocument> condition, String what)
            throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        StatusDocument status;
        while (!condition.test(status = admin.status())) {
            assertThat(System.nanoTime()).as("%s within %s; last status: %s", what, TIMEOUT, describe(status))
                    .isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    /** What matters in a status when a wait fails: the backing, the room left, requests waiting for room. */
    private static String describe(StatusDocument status) {
        return "backing " + status.backing() + ", segments used " + status.segsUsed() + " of " + status.cacheSegs()
                + ", dirty " + status.dirtyBytes() + " bytes, requests waiting for space " + status.waitingRequests();
    }

    /**
     * A writer thread: seeded random 64 KiB blocks of {@link SectorData} into {@code [offset, offset + REGION)}
     * through pcache, one at a time, each recorded in {@code model} (the region's expected content) once pcache
     * acknowledged it. It writes only as many as {@link #allow} granted, at most one per {@link #GAP_NANOS}.
     */
    private static final class WriteLoad implements AutoCloseable {

        static final long GAP_NANOS = TimeUnit.MILLISECONDS.toNanos(5);

        private final NbdClient client;
        private final AdminClient admin;
        private final Random random;
        private final long offset;
        private final byte[] model;
        private final long seed;
        private final Object lock = new Object();
        /** Guarded by lock. */
        private int allowed;
        /** Guarded by lock. */
        private int written;
        /** Guarded by lock. */
        private boolean closing;
        /** Guarded by lock. */
        private Throwable failure;
        private final Thread thread;

        WriteLoad(NbdClient client, AdminClient admin, Random random, long offset, byte[] model, long seed) {
            this.client = client;
            this.admin = admin;
            this.random = random;
            this.offset = offset;
            this.model = model;
            this.seed = seed;
            this.thread = Thread.ofPlatform().name("ceph-it-writer").daemon().start(this::run);
        }

        void allow(int more) {
            synchronized (lock) {
                allowed += more;
                lock.notifyAll();
            }
        }

        /** Allows {@code more} writes and waits until every write allowed so far is done. */
        void allowAndAwait(int more, String when) throws Exception {
            allow(more);
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            synchronized (lock) {
                while (written < allowed && failure == null) {
                    long left = deadline - System.nanoTime();
                    if (left <= 0) {
                        throw new AssertionError("only " + written + " of " + allowed + " writes done " + when
                                + " within " + TIMEOUT + " (seed " + seed + "); " + describe(admin.status()));
                    }
                    TimeUnit.NANOSECONDS.timedWait(lock, left);
                }
                if (failure != null) {
                    throw new AssertionError("the writer failed " + when + " (seed " + seed + ")", failure);
                }
            }
        }

        private void run() {
            long last = 0;
            while (true) {
                synchronized (lock) {
                    while (written >= allowed && !closing) {
                        try {
                            lock.wait();
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    if (closing) {
                        return;
                    }
                }
                long wait = last + GAP_NANOS - System.nanoTime();
                if (wait > 0) {
                    LockSupport.parkNanos(wait);
                }
                last = System.nanoTime();
                try {
                    writeOne(written + 1);
                } catch (Exception | AssertionError e) {
                    synchronized (lock) {
                        failure = e;
                        lock.notifyAll();
                    }
                    return;
                }
                synchronized (lock) {
                    written++;
                    lock.notifyAll();
                }
            }
        }

        private void writeOne(int version) throws Exception {
            int block = random.nextInt((int) (REGION / BLOCK));
            byte[] data = SectorData.of(offset + (long) block * BLOCK, BLOCK, version);
            long sent = System.nanoTime();
            try {
                client.write(offset + (long) block * BLOCK, MemorySegment.ofArray(data), Durability.BUFFERED)
                        .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            } catch (ExecutionException | TimeoutException e) {
                throw new AssertionError("write " + version + " (block " + block + ") through pcache failed after "
                        + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - sent) + " ms; "
                        + describe(admin.status()), e);
            }
            System.arraycopy(data, 0, model, block * BLOCK, BLOCK);
        }

        @Override
        public void close() throws InterruptedException {
            synchronized (lock) {
                closing = true;
                lock.notifyAll();
            }
            thread.join(TIMEOUT.toMillis());
            assertThat(thread.isAlive()).as("the writer stopped within %s", TIMEOUT).isFalse();
        }
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
