package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
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

/** Our server and our client in one JVM, over real loopback sockets. */
class NbdServerTest {

    private static final long SIZE = 128L << 20;

    @TempDir
    Path dir;

    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private final Arena arena = Arena.ofShared();
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private NbdServer server;

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable closeable : closeables.reversed()) {
            closeable.close();
        }
        if (server != null) {
            server.stop();
        }
        arena.close();
        memory.close();
    }

    private NbdServer start(NbdExport export, NbdServer.Options options) throws Exception {
        server = new NbdServer(export, options.withAddresses(new InetSocketAddress("127.0.0.1", 0),
                UnixDomainSocketAddress.of(dir.resolve("nbd.sock"))));
        server.start();
        return server;
    }

    private NbdClient connect(int address) throws Exception {
        NbdClient client = NbdClient.connect(NbdUri.of(server.boundAddresses().get(address), "disk"));
        closeables.add(client);
        return client;
    }

    private MemorySegment pattern(long length, int seed) {
        MemorySegment segment = arena.allocate(length);
        for (long i = 0; i < length; i++) {
            segment.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 31 + seed));
        }
        return segment;
    }

    @ParameterizedTest(name = "address {0}")
    @ValueSource(ints = {0, 1})
    void writeThenReadRoundTripsOverTcpAndUnix(int address) throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdClient client = connect(address);
        MemorySegment data = pattern(64 * 1024, address);
        client.write(4096, data, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        MemorySegment back = arena.allocate(data.byteSize());
        client.read(4096, back).get(5, TimeUnit.SECONDS);
        assertThat(back.mismatch(data)).isEqualTo(-1);
        assertThat(memory.contents().asSlice(4096, data.byteSize()).mismatch(data)).isEqualTo(-1);
    }

    @Test
    void fuaAndFlushReachTheExport() throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        client.write(0, pattern(4096, 1), Durability.FUA).get(5, TimeUnit.SECONDS);
        client.flush().get(5, TimeUnit.SECONDS);
        assertThat(memory.fuaWrites()).isEqualTo(1);
        assertThat(memory.flushes()).isEqualTo(1);
    }

    @Test
    void trimLongerThanTheMaximumIsSplitAndApplied() throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        memory.contents().fill((byte) 7);
        client.trim(0, 64L << 20, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        client.writeZeroes(64L << 20, 32L << 20, Durability.FUA).get(5, TimeUnit.SECONDS);
        assertThat(memory.contents().asSlice(0, 96L << 20).mismatch(arena.allocate(96L << 20))).isEqualTo(-1);
        assertThat(memory.contents().get(ValueLayout.JAVA_BYTE, 96L << 20)).isEqualTo((byte) 7);
    }

    @Test
    void everyCommandHandedToTheExportIsTimedOnceUnderItsOwnCommand() throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        client.write(0, pattern(8192, 3), Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        client.write(8192, pattern(8192, 4), Durability.FUA).get(5, TimeUnit.SECONDS);
        client.read(0, arena.allocate(8192)).get(5, TimeUnit.SECONDS);
        client.writeZeroes(16384, 4096, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        client.trim(0, 64L << 20, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        client.flush().get(5, TimeUnit.SECONDS);

        RequestStatistics statistics = server.statistics();
        assertThat(statistics.latency(NbdCommand.WRITE).snapshot().count()).isEqualTo(2);
        assertThat(statistics.latency(NbdCommand.READ).snapshot().count()).isEqualTo(1);
        assertThat(statistics.latency(NbdCommand.WRITE_ZEROES).snapshot().count()).isEqualTo(1);
        assertThat(statistics.latency(NbdCommand.TRIM).snapshot().count())
                .as("one command, though split in two on its way to the export").isEqualTo(1);
        assertThat(statistics.latency(NbdCommand.FLUSH).snapshot().count()).isEqualTo(1);
        assertThat(statistics.latency(NbdCommand.CACHE).snapshot().count()).isZero();
        RequestLatency.Snapshot writes = statistics.latency(NbdCommand.WRITE).snapshot();
        assertThat(writes.p50Nanos()).isPositive().isLessThanOrEqualTo(writes.maxNanos());
        assertThatThrownBy(() -> statistics.latency(NbdCommand.BLOCK_STATUS))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void manyReadsInFlightAreAnsweredInCompletionOrder() throws Exception {
        GatedExport gated = new GatedExport(memory);
        start(gated, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        MemorySegment data = pattern(16 * 4096, 3);
        client.write(0, data, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        List<CompletableFuture<Void>> reads = new ArrayList<>();
        List<MemorySegment> buffers = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            MemorySegment buffer = arena.allocate(4096);
            buffers.add(buffer);
            reads.add(client.read(i * 4096L, buffer));
        }
        assertThat(gated.awaitReads(16, 5)).isTrue();
        assertThat(reads).noneMatch(CompletableFuture::isDone);
        gated.openInReverse();
        CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new)).get(5, TimeUnit.SECONDS);
        for (int i = 0; i < 16; i++) {
            assertThat(buffers.get(i).mismatch(data.asSlice(i * 4096L, 4096))).isEqualTo(-1);
        }
    }

    @Test
    void theRequestWindowBoundsWhatOneConnectionHasInFlight() throws Exception {
        GatedExport gated = new GatedExport(memory);
        start(gated, NbdServer.Options.defaults().withLimits(4, 4, 64L << 20));
        NbdClient client = connect(0);
        List<CompletableFuture<Void>> reads = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            reads.add(client.read(i * 4096L, arena.allocate(4096)));
        }
        for (int round = 0; round < 3; round++) {
            assertThat(gated.awaitReads(4, 5)).isTrue();
            assertThat(gated.pendingReads()).isEqualTo(4);
            gated.openInReverse();
        }
        CompletableFuture.allOf(reads.toArray(CompletableFuture[]::new)).get(5, TimeUnit.SECONDS);
        assertThat(gated.maxPending()).isEqualTo(4);
    }

    @Test
    void stopAnswersRequestsInFlightBeforeClosing() throws Exception {
        GatedExport gated = new GatedExport(memory);
        start(gated, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        CompletableFuture<Void> read = client.read(0, arena.allocate(4096));
        assertThat(gated.awaitReads(1, 5)).isTrue();
        CountDownLatch stopped = new CountDownLatch(1);
        Thread stopper = Thread.ofPlatform().start(() -> {
            server.stop();
            stopped.countDown();
        });
        awaitBlockedIn(stopper, "joinReaders");
        assertThat(stopped.getCount()).as("stop waits for the read").isEqualTo(1);
        gated.openInReverse();
        read.get(5, TimeUnit.SECONDS);
        assertThat(stopped.await(5, TimeUnit.SECONDS)).isTrue();
        stopper.join();
        assertThat(Files.exists(dir.resolve("nbd.sock"))).as("socket file removed").isFalse();
        assertThatThrownBy(() -> client.read(0, arena.allocate(512)).get(5, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class);
    }

    @Test
    void stopAnswersWhatWasReadGivesEshutdownToNewRequestsAndClosesOnTheClientsDisconnect() throws Exception {
        GatedExport gated = new GatedExport(memory);
        start(gated, NbdServer.Options.defaults());
        memory.contents().asSlice(0, 4096).fill((byte) 0x42);
        try (RawConnection client = RawConnection.negotiate(server.boundAddresses().getFirst())) {
            client.request(NbdCommand.READ, 1, 0, 4096);
            assertThat(gated.awaitReads(1, 5)).isTrue();
            Thread stopper = Thread.ofPlatform().start(server::stop);
            awaitBlockedIn(stopper, "joinReaders");

            client.request(NbdCommand.READ, 2, 0, 4096);
            assertThat(client.reply(2)).as("a request read after the stop began").isEqualTo(NbdError.ESHUTDOWN.code());
            client.write(3, 0, ByteBuffer.allocate(8192));
            assertThat(client.reply(3)).isEqualTo(NbdError.ESHUTDOWN.code());
            assertThat(stopper.isAlive()).as("the read in flight holds the stop").isTrue();

            gated.openInReverse();
            assertThat(client.reply(1)).as("the request read before the stop is answered").isZero();
            assertThat(client.readFully(4096)).isEqualTo(ByteBuffer.wrap(filled(4096, (byte) 0x42)));
            client.request(NbdCommand.DISC, 4, 0, 0);
            assertThat(client.closedByServer(1)).as("closed after the client's disconnect").isTrue();
            stopper.join(TimeUnit.SECONDS.toMillis(10));
            assertThat(stopper.isAlive()).isFalse();
        }
        assertThat(memory.contents().get(ValueLayout.JAVA_BYTE, 0)).as("the refused write wrote nothing")
                .isEqualTo((byte) 0x42);
    }

    @Test
    void stopEndsAnIdleConnectionWithoutWaitingForTheDrainTimeout() throws Exception {
        NbdServer.Options defaults = NbdServer.Options.defaults();
        start(memory, new NbdServer.Options(defaults.addresses(), 4, 64, 64L << 20, defaults.handshakeTimeout(),
                Duration.ofMinutes(5)));
        NbdClient idle = connect(0);
        idle.flush().get(5, TimeUnit.SECONDS);
        Thread stopper = Thread.ofPlatform().start(server::stop);
        stopper.join(TimeUnit.SECONDS.toMillis(20));
        assertThat(stopper.isAlive()).as("stop still waiting on an idle connection").isFalse();
        assertThatThrownBy(() -> idle.flush().get(5, TimeUnit.SECONDS)).isInstanceOf(ExecutionException.class);
    }

    private static byte[] filled(int length, byte value) {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, value);
        return bytes;
    }

    /** Waits until {@code thread} is parked inside method {@code method}: the state, not a timing window. */
    private static void awaitBlockedIn(Thread thread, String method) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (!parkedIn(thread, method)) {
            assertThat(System.nanoTime()).as(thread.getName() + " never blocked in " + method).isLessThan(deadline);
            Thread.onSpinWait();
        }
    }

    private static boolean parkedIn(Thread thread, String method) {
        Thread.State state = thread.getState();
        if (state != Thread.State.WAITING && state != Thread.State.TIMED_WAITING) {
            return false;
        }
        for (StackTraceElement frame : thread.getStackTrace()) {
            if (frame.getMethodName().equals(method)) {
                return true;
            }
        }
        return false;
    }

    @Test
    void aClientThatNeverFinishesTheHandshakeIsCutOff() throws Exception {
        NbdServer.Options defaults = NbdServer.Options.defaults();
        start(memory, new NbdServer.Options(defaults.addresses(), 4, 64, 64L << 20, Duration.ofMillis(200),
                defaults.drainTimeout()));
        try (SocketChannel idle = SocketChannel.open(server.boundAddresses().get(0))) {
            CompletableFuture<Integer> endOfStream = CompletableFuture.supplyAsync(() -> {
                ByteBuffer buffer = ByteBuffer.allocate(64);
                try {
                    int read;
                    do {
                        buffer.clear();
                        read = idle.read(buffer);
                    } while (read > 0);
                    return read;
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
            assertThat(endOfStream.get(5, TimeUnit.SECONDS)).isEqualTo(-1);
        }
        connect(0).flush().get(5, TimeUnit.SECONDS);
    }

    @Test
    void exportFailureReachesTheClientAsEio() throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdClient client = connect(0);
        memory.failRange(8192, 512);
        assertThatThrownBy(() -> client.read(8192, arena.allocate(4096)).get(5, TimeUnit.SECONDS))
                .cause().isInstanceOf(NbdErrorException.class).hasMessageContaining("EIO")
                .hasMessageContaining("injected failure");
        client.read(0, arena.allocate(4096)).get(5, TimeUnit.SECONDS);
    }

    @Test
    void unknownExportIsRefusedWithAClearMessage() throws Exception {
        start(memory, NbdServer.Options.defaults());
        SocketAddress address = server.boundAddresses().get(0);
        assertThatThrownBy(() -> NbdClient.connect(NbdUri.of(address, "nope")))
                .isInstanceOf(NbdHandshakeException.class).hasMessageContaining("no export named 'nope'");
    }

    @Test
    void connectingWhereNobodyListensSaysSo() {
        assertThatThrownBy(() -> NbdClient.connect(NbdUri.parse("nbd+unix:///?socket=" + dir.resolve("none"))))
                .hasMessageContaining("cannot connect to NBD server nbd+unix:///?socket=");
    }

    @Test
    void engineSplitsRequestsAtTheMaximumBlockSize() throws Exception {
        start(memory, NbdServer.Options.defaults());
        NbdEngine engine = NbdEngine.of(connect(0));
        MemorySegment data = pattern(40L << 20, 5);
        AtomicReference<Exception> error = new AtomicReference<>();
        CountDownLatch written = new CountDownLatch(1);
        engine.write(0, data, failure -> {
            error.set(failure);
            written.countDown();
        });
        assertThat(written.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(error.get()).isNull();
        assertThat(memory.contents().asSlice(0, data.byteSize()).mismatch(data)).isEqualTo(-1);
        assertThat(engine.alignment()).as("the server's minimum block size").isEqualTo(1);
        MemorySegment back = arena.allocate(3);
        CountDownLatch read = new CountDownLatch(1);
        engine.read(101, back, failure -> {
            error.set(failure);
            read.countDown();
        });
        assertThat(read.await(5, TimeUnit.SECONDS)).isTrue();
        assertThat(error.get()).isNull();
        assertThat(back.mismatch(data.asSlice(101, 3))).isEqualTo(-1);
    }
}
