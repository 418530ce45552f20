package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.backing.BackingIoException;

/** {@link NbdClient} and {@link NbdEngine} against nbdkit, plain and behind its delay and error filters. */
class NbdkitClientIT {

    private static final Duration START_TIMEOUT = Duration.ofSeconds(10);

    @TempDir
    Path dir;

    private final Arena arena = Arena.ofShared();
    private final List<Process> nbdkits = new ArrayList<>();
    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable closeable : closeables.reversed()) {
            closeable.close();
        }
        for (Process nbdkit : nbdkits) {
            nbdkit.destroy();
            if (!nbdkit.waitFor(5, TimeUnit.SECONDS)) {
                nbdkit.destroyForcibly().waitFor();
            }
        }
        arena.close();
    }

    /** Starts nbdkit in the foreground on a unix socket (transport 1) or a free TCP port (0); returns its URI. */
    private String nbdkit(int transport, String... pluginAndFilters) throws Exception {
        ExternalTool.require("nbdkit");
        List<String> command = ExternalTool.list("nbdkit", "-f", "--exit-with-parent");
        String uri;
        Path ready = dir.resolve("nbdkit-" + nbdkits.size() + ".pid");
        if (transport == 0) {
            int port;
            try (ServerSocket probe = new ServerSocket(0)) {
                port = probe.getLocalPort();
            }
            command.addAll(List.of("-i", "127.0.0.1", "-p", Integer.toString(port)));
            uri = "nbd://127.0.0.1:" + port + "/";
        } else {
            Path socket = dir.resolve("nbdkit-" + nbdkits.size() + ".sock");
            command.addAll(List.of("-U", socket.toString()));
            uri = "nbd+unix:///?socket=" + socket;
        }
        command.addAll(List.of("-P", ready.toString()));
        command.addAll(List.of(pluginAndFilters));
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("nbdkit-" + nbdkits.size() + ".log").toFile()).start();
        nbdkits.add(process);
        // nbdkit writes its pid file once it listens; there is no other signal to wait on.
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (!Files.exists(ready) || Files.size(ready) == 0) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("nbdkit did not start: " + command);
            }
            Thread.sleep(10);
        }
        return uri;
    }

    private NbdClient connect(String uri) throws IOException {
        NbdClient client = NbdClient.connect(NbdUri.parse(uri));
        closeables.add(client);
        return client;
    }

    private MemorySegment pattern(long length, int seed) {
        MemorySegment segment = arena.allocate(length);
        for (long i = 0; i < length; i += Long.BYTES) {
            segment.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E3779B97F4A7C15L + seed);
        }
        return segment;
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void clientReadsWritesTrimsAndZeroesNbdkitMemory(int transport) throws Exception {
        NbdClient client = connect(nbdkit(transport, "memory", "64M"));
        assertThat(client.size()).isEqualTo(64 << 20);
        assertThat(client.structuredReplies()).isTrue();
        assertThat(client.minimumBlockSize()).as("nbdkit memory advertises no block size").isEqualTo(1);
        List<CompletableFuture<Void>> writes = new ArrayList<>();
        MemorySegment data = pattern(4 << 20, transport);
        for (int i = 0; i < 64; i++) {
            writes.add(client.write(i * 65536L, data.asSlice(i * 65536L, 65536),
                    i % 2 == 0 ? Durability.FUA : Durability.BUFFERED));
        }
        CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)).get(10, TimeUnit.SECONDS);
        client.flush().get(5, TimeUnit.SECONDS);
        MemorySegment back = arena.allocate(4 << 20);
        client.read(0, back).get(5, TimeUnit.SECONDS);
        assertThat(back.mismatch(data)).isEqualTo(-1);
        client.trim(0, 1 << 20, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        client.writeZeroes(1 << 20, 1 << 20, Durability.FUA).get(5, TimeUnit.SECONDS);
        client.read(0, back).get(5, TimeUnit.SECONDS);
        assertThat(back.asSlice(0, 2 << 20).mismatch(arena.allocate(2 << 20))).isEqualTo(-1);
        assertThat(back.asSlice(2 << 20).mismatch(data.asSlice(2 << 20))).isEqualTo(-1);
    }

    @Test
    void readsOfHolesComeBackAsZeroes() throws Exception {
        NbdClient client = connect(nbdkit(1, "memory", "16M"));
        MemorySegment back = arena.allocate(1 << 20).fill((byte) 0x7f);
        client.read(4 << 20, back).get(5, TimeUnit.SECONDS);
        assertThat(back.mismatch(arena.allocate(1 << 20))).isEqualTo(-1);
    }

    @Test
    void engineThroughTheDelayFilterKeepsManyRequestsInFlight() throws Exception {
        // Long delays and a bound of half the serial time keep the check meaningful on a loaded machine.
        String uri = nbdkit(1, "--filter=delay", "memory", "64M", "wdelay=200ms", "rdelay=200ms");
        NbdEngine engine = NbdEngine.open(uri);
        closeables.add(engine);
        MemorySegment data = pattern(8 << 20, 9);
        int requests = 16;
        CountDownLatch written = new CountDownLatch(requests);
        AtomicReference<Exception> error = new AtomicReference<>();
        long start = System.nanoTime();
        for (int i = 0; i < requests; i++) {
            engine.write(i * 65536L, data.asSlice(i * 65536L, 65536), failure -> {
                if (failure != null) {
                    error.compareAndSet(null, failure);
                }
                written.countDown();
            });
        }
        assertThat(written.await(20, TimeUnit.SECONDS)).isTrue();
        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
        assertThat(error.get()).isNull();
        assertThat(elapsedMillis).as("16 writes of 200 ms each overlap").isLessThan(requests * 200L / 2);
        CountDownLatch flushed = new CountDownLatch(1);
        engine.flush(failure -> {
            error.compareAndSet(null, failure);
            flushed.countDown();
        });
        assertThat(flushed.await(5, TimeUnit.SECONDS)).isTrue();
        MemorySegment back = arena.allocate(requests * 65536L);
        CountDownLatch read = new CountDownLatch(1);
        engine.read(0, back, failure -> {
            error.compareAndSet(null, failure);
            read.countDown();
        });
        assertThat(read.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(error.get()).isNull();
        assertThat(back.mismatch(data.asSlice(0, back.byteSize()))).isEqualTo(-1);
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void serverErrorsFailOnlyTheirRequest(int transport) throws Exception {
        Path trigger = dir.resolve("fail-now");
        String uri = nbdkit(transport, "--filter=error", "memory", "16M", "error=EIO", "error-rate=100%",
                "error-file=" + trigger);
        NbdClient client = connect(uri);
        MemorySegment block = pattern(4096, 3);
        client.write(0, block, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        Files.createFile(trigger);
        assertThatThrownBy(() -> client.read(0, arena.allocate(4096)).get(5, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class).cause().isInstanceOf(NbdErrorException.class)
                .extracting(e -> ((NbdErrorException) e).error()).isEqualTo(NbdError.EIO);
        NbdEngine engine = NbdEngine.of(client);
        AtomicReference<Exception> error = new AtomicReference<>();
        CountDownLatch failed = new CountDownLatch(1);
        engine.write(0, block, failure -> {
            error.set(failure);
            failed.countDown();
        });
        assertThat(failed.await(5, TimeUnit.SECONDS)).isTrue();
        assertThat(error.get()).isInstanceOf(BackingIoException.class).hasMessageContaining("EIO");
        Files.delete(trigger);
        MemorySegment back = arena.allocate(4096);
        client.read(0, back).get(5, TimeUnit.SECONDS);
        assertThat(back.mismatch(block)).isEqualTo(-1);
    }

    @Test
    void serverGoingAwayFailsRequestsInsteadOfHanging() throws Exception {
        NbdClient client = connect(nbdkit(1, "--filter=delay", "memory", "16M", "rdelay=2"));
        CompletableFuture<Void> read = client.read(0, arena.allocate(4096));
        nbdkits.getFirst().destroyForcibly().waitFor();
        assertThatThrownBy(() -> read.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .cause().isInstanceOf(IOException.class);
        assertThatThrownBy(() -> client.flush().get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class);
    }

    @Test
    void aServerThatNeverAnswersARequestFailsItWithinTheRequestTimeout() throws Exception {
        NbdClient client = NbdClient.connect(NbdUri.parse(nbdkit(0, "--filter=delay", "memory", "16M",
                "rdelay=3600")), new NbdClient.Options(Duration.ofSeconds(5), Duration.ofSeconds(5),
                Duration.ofSeconds(1)));
        closeables.add(client);
        long start = System.nanoTime();
        CompletableFuture<Void> read = client.read(0, arena.allocate(4096));
        assertThatThrownBy(() -> read.get(10, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class)
                .cause().isInstanceOf(IOException.class)
                .hasMessageContaining("did not answer READ offset=0 length=4096 within 1 s");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(3));
        assertThat(client.broken()).isCompletedWithValueMatching(cause -> cause.getMessage().contains("within 1 s"));
        assertThatThrownBy(() -> client.flush().get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class);
    }

    @Test
    void engineSendsTrimAndZeroWhenNbdkitAdvertisesThemAndWritesZeroBlocksWhenNot() throws Exception {
        Path log = dir.resolve("requests.log");
        NbdEngine engine = NbdEngine.of(connect(nbdkit(1, "--filter=log", "memory", "16M", "logfile=" + log)));
        closeables.add(engine);
        assertThat(engine.supportsDiscard()).isTrue();
        assertThat(engine.supportsWriteZeroes()).isTrue();
        org.pcache.backing.BlockingIo.discard(engine, 0, 1 << 20);
        org.pcache.backing.BlockingIo.writeZeroes(engine, 1 << 20, 1 << 20);
        assertThat(Files.readString(log)).contains(" Trim id=").contains(" Zero id=").doesNotContain(" Write id=");

        Path plainLog = dir.resolve("plain.log");
        NbdEngine plain = NbdEngine.of(connect(nbdkit(1, "--filter=log", "--filter=nozero", "memory", "16M",
                "logfile=" + plainLog)));
        closeables.add(plain);
        assertThat(plain.supportsWriteZeroes()).as("nozero hides NBD_FLAG_SEND_WRITE_ZEROES").isFalse();
        org.pcache.backing.BlockingIo.writeZeroes(plain, 1 << 20, 1 << 20);
        assertThat(Files.readString(plainLog)).contains(" Write id=").doesNotContain(" Zero id=");
    }

    @Test
    void engineAllocationIsTheServersOwnBlockStatus() throws Exception {
        NbdClient client = connect(nbdkit(1, "memory", "64M"));
        assertThat(client.hasBaseAllocation()).isTrue();
        NbdEngine engine = NbdEngine.of(client);
        closeables.add(engine);
        org.pcache.backing.BlockingIo.write(engine, 1 << 20, pattern(1 << 20, 5));
        assertThat(org.pcache.backing.BlockingIo.allocation(engine, 0, 4 << 20)).containsExactly(
                new org.pcache.backing.BackingExtent(1 << 20, org.pcache.backing.BackingExtent.Kind.HOLE),
                new org.pcache.backing.BackingExtent(1 << 20, org.pcache.backing.BackingExtent.Kind.DATA),
                new org.pcache.backing.BackingExtent(2 << 20, org.pcache.backing.BackingExtent.Kind.HOLE));
        assertThat(org.pcache.backing.BlockingIo.allocation(engine, 0, 64L << 20))
                .as("one call asks for at most 32 MiB; the caller asks again for the rest")
                .containsExactly(
                        new org.pcache.backing.BackingExtent(1 << 20, org.pcache.backing.BackingExtent.Kind.HOLE),
                        new org.pcache.backing.BackingExtent(1 << 20, org.pcache.backing.BackingExtent.Kind.DATA),
                        new org.pcache.backing.BackingExtent(30 << 20, org.pcache.backing.BackingExtent.Kind.HOLE));
    }

    @Test
    void withoutBaseAllocationTheEngineReportsData() throws Exception {
        NbdClient client = connect(nbdkit(1, "--filter=noextents", "memory", "64M"));
        NbdEngine engine = NbdEngine.of(client);
        closeables.add(engine);
        assertThat(org.pcache.backing.BlockingIo.allocation(engine, 0, 4 << 20)).allSatisfy(extent ->
                assertThat(extent.kind()).isEqualTo(org.pcache.backing.BackingExtent.Kind.DATA));
    }
}
