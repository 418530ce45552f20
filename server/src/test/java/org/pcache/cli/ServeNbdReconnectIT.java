package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.admin.StatusDocument;
import org.pcache.nbd.Durability;
import org.pcache.nbd.ExternalTool;
import org.pcache.nbd.NbdClient;
import org.pcache.nbd.NbdUri;

/**
 * An NBD backing server killed under load and started again on the same port and file (nbdkit's file plugin, and a
 * qemu-storage-daemon NBD export): meanwhile writes are absorbed, cached data reads back, status shows the backing
 * disconnected and {@code pcache drain} says why it does not progress; once the server is back pcache reconnects,
 * the drain finishes, and the backing file equals the model of every write, byte for byte.
 */
class ServeNbdReconnectIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final int MIB = 1 << 20;
    private static final int SIZE = 64 * MIB;
    private static final int BLOCK = 64 * 1024;
    private static final int WRITES_BEFORE = 150;
    private static final int WRITES_WHILE_DOWN = 150;

    @TempDir
    Path dir;

    private ServeFiles files;
    private Process backing;
    private ServeProcess server;
    private int port;
    private final byte[] model = new byte[SIZE];
    private final boolean[] written = new boolean[SIZE / BLOCK];

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
        try (RandomAccessFile file = new RandomAccessFile(files.backing.toFile(), "rw")) {
            file.setLength(SIZE);
        }
        try (ServerSocket probe = new ServerSocket(0)) {
            port = probe.getLocalPort();
        }
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (backing != null) {
            backing.destroyForcibly().waitFor();
        }
        files.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"nbdkit", "qemu-storage-daemon"})
    void aBackingServerKilledAndRestartedUnderLoadLosesNothing(String kind) throws Exception {
        startBacking(kind);
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", "nbd://127.0.0.1:" + port + "/", "--listen", "127.0.0.1:0",
                "--admin", ServeFiles.EPHEMERAL_ADMIN);
        long seed = System.nanoTime();
        Random random = new Random(seed);
        try (NbdClient client = NbdClient.connect(NbdUri.parse(server.uri()));
             AdminClient admin = new AdminClient(address(server.admin()))) {
            AtomicInteger version = new AtomicInteger();
            AtomicBoolean stopWriting = new AtomicBoolean();
            CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                while (!stopWriting.get()) {
                    write(client, random, version.incrementAndGet());
                }
            });
            awaitWrites(version, WRITES_BEFORE, writer);
            backing.destroyForcibly().waitFor(); // SIGKILL: whatever writeback had in flight is cut off
            awaitStatus(admin, status -> status.backing().disconnected(), "the backing shows as disconnected");
            int atDisconnect = version.get();
            awaitWrites(version, atDisconnect + WRITES_WHILE_DOWN, writer);
            stopWriting.set(true);
            writer.get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            client.flush().get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            assertCachedDataReadsBack(client, seed);

            StatusDocument down = admin.status();
            assertThat(down.backing().state()).isEqualTo("disconnected");
            assertThat(down.backing().lastError()).as("the reason is kept").isNotBlank();
            assertThat(down.dirtyBytes()).as("writes were absorbed while the backing was gone").isPositive();
            assertThat(ServeProcess.run(dir, "status", "--admin", server.admin()).stdout())
                    .contains("backing disconnected, reconnecting");

            Path drainOut = dir.resolve("drain.out");
            Process drain = pcache(drainOut, "drain", "--admin", server.admin());
            try {
                awaitFileContains(drainOut, "drain: not progressing: backing disconnected", drain);
                startBacking(kind);
                assertThat(drain.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("drain ends").isTrue();
                assertThat(drain.exitValue()).as(Files.readString(drainOut)).isZero();
            } finally {
                drain.destroyForcibly().waitFor();
            }
            assertThat(Files.readString(drainOut)).contains("drain: writeback progressing again")
                    .contains("drain: done");
            StatusDocument up = admin.status();
            assertThat(up.backing().state()).isEqualTo("connected");
            assertThat(up.backing().reconnects()).isEqualTo(1);
            assertThat(up.clean()).isTrue();
        }
        assertThat(server.terminate()).isZero();
        server = null;
        backing.destroy();
        backing.waitFor(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        backing = null;
        byte[] onDisk = Files.readAllBytes(files.backing);
        assertThat(firstDifference(onDisk)).as("first byte where the backing file differs from the model (seed %d)",
                seed).isEqualTo(-1);
    }

    private void write(NbdClient client, Random random, int version) {
        int block;
        byte[] data;
        synchronized (model) {
            block = random.nextInt(SIZE / BLOCK);
            data = SectorData.of((long) block * BLOCK, BLOCK, version);
        }
        try {
            client.write((long) block * BLOCK, MemorySegment.ofArray(data), Durability.BUFFERED)
                    .get(TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("write of block " + block + " through pcache failed", e);
        }
        synchronized (model) {
            System.arraycopy(data, 0, model, block * BLOCK, BLOCK);
            written[block] = true;
        }
    }

    /** Every block written so far is dirty or cached: it reads back while the backing is gone. */
    private void assertCachedDataReadsBack(NbdClient client, long seed) throws Exception {
        byte[] back = new byte[BLOCK];
        for (int block = 0; block < written.length; block++) {
            if (written[block]) {
                client.read((long) block * BLOCK, MemorySegment.ofArray(back)).get(TIMEOUT.toSeconds(),
                        TimeUnit.SECONDS);
                assertThat(MemorySegment.ofArray(back).mismatch(MemorySegment.ofArray(model)
                        .asSlice((long) block * BLOCK, BLOCK))).as("block %d (seed %d)", block, seed).isEqualTo(-1);
            }
        }
    }

    private long firstDifference(byte[] onDisk) {
        return MemorySegment.ofArray(onDisk).mismatch(MemorySegment.ofArray(model));
    }

    /** Starts the backing server on {@link #port} over the backing file and waits until it accepts connections. */
    private void startBacking(String kind) throws Exception {
        ExternalTool.require(kind);
        List<String> command = switch (kind) {
            case "nbdkit" -> ExternalTool.list("nbdkit", "-f", "--exit-with-parent", "-i", "127.0.0.1", "-p",
                    Integer.toString(port), "file", files.backing.toString());
            default -> ExternalTool.list("qemu-storage-daemon", "--blockdev",
                    "driver=file,filename=" + files.backing + ",node-name=n0", "--nbd-server",
                    "addr.type=inet,addr.host=127.0.0.1,addr.port=" + port, "--export",
                    "type=nbd,id=e0,node-name=n0,name=,writable=on");
        };
        backing = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve(kind + ".log").toFile())).start();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return;
            } catch (IOException notYet) {
                assertThat(backing.isAlive()).as("%s started: %s", kind, Files.readString(dir.resolve(kind + ".log")))
                        .isTrue();
                assertThat(System.nanoTime()).as("%s listens on %d", kind, port).isLessThan(deadline);
                Thread.sleep(20);
            }
        }
    }

    private Process pcache(Path output, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "--enable-native-access=ALL-UNNAMED", "-jar", System.getProperty("pcache.jar")));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(output.toFile()).start();
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

    private static void awaitStatus(AdminClient admin, java.util.function.Predicate<StatusDocument> condition,
                                    String what) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!condition.test(admin.status())) {
            assertThat(System.nanoTime()).as(what).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    private static void awaitFileContains(Path file, String text, Process process) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(file) || !Files.readString(file).contains(text)) {
            assertThat(process.isAlive()).as("still running; output: %s", Files.exists(file)
                    ? Files.readString(file) : "").isTrue();
            assertThat(System.nanoTime()).as("'%s' printed", text).isLessThan(deadline);
            Thread.sleep(20);
        }
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }
}
