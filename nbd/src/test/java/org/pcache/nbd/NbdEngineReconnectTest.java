package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.EnumSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.pcache.backing.BackingConnection;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.BlockingIo;
import org.pcache.nbd.NbdExport.Capability;

/**
 * {@link NbdEngine} when its server goes away and comes back on the same port: requests fail at once while it is gone
 * (never hang), the connection shows as disconnected with the reason, and once the server is back the engine
 * reconnects by itself; a server that comes back with a different export is not taken; a server that stops and answers
 * NBD_ESHUTDOWN is left at once.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NbdEngineReconnectTest {

    private static final long SIZE = 16L << 20;
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    private MemoryExport export;
    private NbdServer server;
    private NbdEngine engine;

    @AfterEach
    void tearDown() throws Exception {
        if (engine != null) {
            engine.close();
        }
        if (server != null) {
            server.stop();
        }
        if (export != null) {
            export.close();
        }
    }

    private InetSocketAddress serve(long size, int port) throws Exception {
        return serve(size, port, EnumSet.of(Capability.FLUSH));
    }

    private InetSocketAddress serve(long size, int port, EnumSet<Capability> capabilities) throws Exception {
        export = new MemoryExport("disk", size, capabilities);
        server = new NbdServer(export, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", port)));
        server.start();
        return (InetSocketAddress) server.boundAddresses().getFirst();
    }

    private void stopServer() throws Exception {
        server.stop();
        server = null;
        export.close();
        export = null;
    }

    @Test
    void aServerThatComesBackOnTheSamePortIsReconnectedTo() throws Exception {
        InetSocketAddress address = serve(SIZE, 0);
        engine = NbdEngine.open(NbdUri.of(address, "disk"), NbdClient.Options.defaults());
        assertThat(engine.connection().state()).isEqualTo(BackingConnection.State.CONNECTED);
        BlockingIo.write(engine, 0, MemorySegment.ofArray(new byte[4096]).fill((byte) 1));

        stopServer();
        awaitState(BackingConnection.State.DISCONNECTED);
        assertThat(engine.connection().lastError()).contains("closed the connection");
        assertThatThrownBy(() -> BlockingIo.write(engine, 4096, MemorySegment.ofArray(new byte[4096])))
                .isInstanceOf(BackingIoException.class).hasMessageContaining("disconnected, reconnecting");
        assertThat(BlockingIo.allocation(engine, 0, 8192)).as("block status need not fail: data is always true")
                .containsExactly(new org.pcache.backing.BackingExtent(8192, org.pcache.backing.BackingExtent.Kind.DATA));

        serve(SIZE, address.getPort());
        awaitState(BackingConnection.State.CONNECTED);
        assertThat(engine.connection().reconnects()).isEqualTo(1);
        BlockingIo.write(engine, 4096, MemorySegment.ofArray(new byte[4096]).fill((byte) 2));
        BlockingIo.flush(engine);
        assertThat(export.contents().asSlice(4096, 4096).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                .containsOnly((byte) 2);
    }

    @Test
    void aServerThatComesBackWithAnotherSizeIsRefusedAndSaysWhy() throws Exception {
        InetSocketAddress address = serve(SIZE, 0);
        engine = NbdEngine.open(NbdUri.of(address, "disk"), NbdClient.Options.defaults());
        stopServer();
        awaitState(BackingConnection.State.DISCONNECTED);
        serve(2 * SIZE, address.getPort());
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        while (!String.valueOf(engine.connection().lastError()).contains("different export")) {
            assertThat(System.nanoTime()).as("the mismatch is reported").isLessThan(deadline);
            Thread.sleep(10);
        }
        assertThat(engine.connection().lastError()).contains("size " + 2 * SIZE + " bytes (expected " + SIZE + ")");
        assertThat(engine.connection().state()).isEqualTo(BackingConnection.State.DISCONNECTED);
        assertThatThrownBy(() -> BlockingIo.read(engine, 0, MemorySegment.ofArray(new byte[512])))
                .isInstanceOf(IOException.class);
    }

    @Test
    void aMultiConnServerGetsFourConnectionsUsedInTurnAndAllAreMadeAgainAfterALoss() throws Exception {
        InetSocketAddress address = serve(SIZE, 0, EnumSet.of(Capability.FLUSH, Capability.MULTI_CONN));
        engine = NbdEngine.open(NbdUri.of(address, "disk"), NbdClient.Options.defaults());
        assertThat(engine.connections()).isEqualTo(NbdLink.MULTI_CONN);
        for (int i = 0; i < 8; i++) {
            BlockingIo.write(engine, i * 4096L, MemorySegment.ofArray(new byte[4096]).fill((byte) (i + 1)));
        }
        BlockingIo.flush(engine);

        stopServer();
        awaitState(BackingConnection.State.DISCONNECTED);
        serve(SIZE, address.getPort(), EnumSet.of(Capability.FLUSH, Capability.MULTI_CONN));
        awaitState(BackingConnection.State.CONNECTED);
        assertThat(engine.connections()).isEqualTo(NbdLink.MULTI_CONN);
        for (int i = 0; i < 8; i++) {
            BlockingIo.write(engine, i * 4096L, MemorySegment.ofArray(new byte[4096]).fill((byte) (i + 1)));
        }
        BlockingIo.flush(engine);
        for (int i = 0; i < 8; i++) {
            assertThat(export.contents().asSlice(i * 4096L, 4096).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
                    .containsOnly((byte) (i + 1));
        }
    }

    @Test
    void aServerThatAnswersEshutdownWhileItStopsIsLeftAndShownDisconnectedAtOnce() throws Exception {
        export = new MemoryExport("disk", SIZE, EnumSet.of(Capability.FLUSH));
        GatedExport gated = new GatedExport(export);
        server = new NbdServer(gated, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
        InetSocketAddress address = (InetSocketAddress) server.boundAddresses().getFirst();
        engine = NbdEngine.open(NbdUri.of(address, "disk"), NbdClient.Options.defaults());
        CompletableFuture<IOException> heldRead = new CompletableFuture<>();
        engine.read(0, MemorySegment.ofArray(new byte[4096]), heldRead::complete);
        assertThat(gated.awaitReads(1, DEADLINE.toSeconds())).as("the read reached the server").isTrue();
        NbdServer stopping = server;
        CompletableFuture<Void> stop = CompletableFuture.runAsync(stopping::stop);

        // The read in flight keeps the stopping server's connection open (it answers it, and NBD_ESHUTDOWN to what
        // comes after, until the client leaves or its drain timeout of 30 s passes).
        long deadline = System.nanoTime() + DEADLINE.toNanos();
        IOException refused = null;
        while (refused == null) {
            assertThat(System.nanoTime()).as("a write is refused once the stop began").isLessThan(deadline);
            try {
                BlockingIo.write(engine, 4096, MemorySegment.ofArray(new byte[4096]));
            } catch (IOException e) {
                refused = e;
            }
        }
        assertThat(refused).hasMessageContaining("ESHUTDOWN");
        awaitState(BackingConnection.State.DISCONNECTED, Duration.ofSeconds(5));
        assertThat(engine.connection().lastError()).contains("is shutting down").contains("NBD_ESHUTDOWN");
        assertThat(heldRead.get(DEADLINE.toSeconds(), TimeUnit.SECONDS)).as("the read in flight fails with the link")
                .isNotNull();
        assertThatThrownBy(() -> BlockingIo.write(engine, 8192, MemorySegment.ofArray(new byte[4096])))
                .isInstanceOf(BackingIoException.class).hasMessageContaining("disconnected, reconnecting");
        gated.openInReverse();
        stop.get(DEADLINE.toSeconds(), TimeUnit.SECONDS);
        server = null;
    }

    @Test
    void aServerWithoutMultiConnGetsOneConnection() throws Exception {
        InetSocketAddress address = serve(SIZE, 0);
        engine = NbdEngine.open(NbdUri.of(address, "disk"), NbdClient.Options.defaults());
        assertThat(engine.connections()).isEqualTo(1);
    }

    /** Polls the engine's observable connection state until it is {@code expected}, with a deadline. */
    private void awaitState(BackingConnection.State expected) throws InterruptedException {
        awaitState(expected, DEADLINE);
    }

    private void awaitState(BackingConnection.State expected, Duration within) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (engine.connection().state() != expected) {
            assertThat(System.nanoTime()).as("connection becomes %s", expected).isLessThan(deadline);
            Thread.sleep(10);
        }
    }
}
