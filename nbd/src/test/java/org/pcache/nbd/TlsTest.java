package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import java.io.IOException;
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
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** NBD over TLS, our server and our client over real loopback sockets, with openssl-made certificates. */
class TlsTest {

    private static final long SIZE = 64L << 20;

    @TempDir
    static Path certificates;

    private static Path trusted;
    private static Path stranger;
    /** The trusted CA only: no client certificate. */
    private static Path anonymous;

    @TempDir
    Path dir;

    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private final Arena arena = Arena.ofShared();
    private NbdServer server;

    @BeforeAll
    static void makeCertificates() throws Exception {
        trusted = TestCertificates.create(certificates.resolve("trusted"));
        stranger = TestCertificates.create(certificates.resolve("stranger"));
        anonymous = Files.createDirectories(certificates.resolve("anonymous"));
        Files.copy(trusted.resolve(TlsCredentials.CA_CERT), anonymous.resolve(TlsCredentials.CA_CERT));
    }

    @AfterEach
    void tearDown() {
        if (server != null) {
            server.stop();
        }
        arena.close();
        memory.close();
    }

    private void start(TlsMode mode, boolean verifyPeer) throws Exception {
        server = new NbdServer(memory, NbdServer.Options.defaults().withAddresses(
                new InetSocketAddress("127.0.0.1", 0), UnixDomainSocketAddress.of(dir.resolve("nbd.sock"))),
                new NbdServer.Tls(mode, TlsCredentials.server(trusted, verifyPeer)));
        server.start();
    }

    private NbdUri uri(int listener, boolean tls, Path credentials) {
        SocketAddress address = server.boundAddresses().get(listener);
        return new NbdUri(address, "disk", tls, credentials);
    }

    @Test
    void dataGoesBothWaysOverTlsOnTcpAndUnixSockets() throws Exception {
        start(TlsMode.REQUIRE, false);
        for (int listener = 0; listener < 2; listener++) {
            // Larger than a TLS record and than the connection's input buffer: many records each way.
            MemorySegment data = pattern(3 << 20, listener);
            MemorySegment back = arena.allocate(data.byteSize());
            try (NbdClient client = NbdClient.connect(uri(listener, true, trusted))) {
                assertThat(client.size()).isEqualTo(SIZE);
                client.write(4096, data, Durability.FUA).get(10, TimeUnit.SECONDS);
                client.read(4096, back).get(10, TimeUnit.SECONDS);
                client.flush().get(10, TimeUnit.SECONDS);
            }
            assertThat(back.mismatch(data)).isEqualTo(-1);
            assertThat(memory.contents().asSlice(4096, data.byteSize()).mismatch(data)).isEqualTo(-1);
        }
    }

    @Test
    void requireRefusesAPlainClient() throws Exception {
        start(TlsMode.REQUIRE, false);
        assertThatThrownBy(() -> NbdClient.connect(uri(0, false, null)).close())
                .isInstanceOf(NbdHandshakeException.class).hasMessageContaining("ERR_TLS_REQD");
    }

    @Test
    void onServesPlainAndTlsClientsAlike() throws Exception {
        start(TlsMode.ON, false);
        try (NbdClient plain = NbdClient.connect(uri(0, false, null));
             NbdClient tls = NbdClient.connect(uri(0, true, trusted))) {
            assertThat(plain.size()).isEqualTo(SIZE);
            assertThat(tls.size()).isEqualTo(SIZE);
        }
    }

    @Test
    void aTlsClientRefusesAServerWithoutTls() throws Exception {
        server = new NbdServer(memory, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
        assertThatThrownBy(() -> NbdClient.connect(uri(0, true, trusted)).close())
                .isInstanceOf(NbdHandshakeException.class).hasMessageContaining("server refused TLS");
    }

    @Test
    void aClientRefusesAServerItsCaDidNotSign() throws Exception {
        start(TlsMode.REQUIRE, false);
        assertThatThrownBy(() -> NbdClient.connect(uri(0, true, stranger)).close())
                .isInstanceOf(TlsTransport.TlsHandshakeException.class);
    }

    @Test
    void aClientRefusesAServerCertifiedForAnotherName() throws Exception {
        start(TlsMode.REQUIRE, false);
        InetSocketAddress bound = (InetSocketAddress) server.boundAddresses().getFirst();
        NbdUri wrongName = new NbdUri(InetSocketAddress.createUnresolved("127.0.0.2", bound.getPort()), "disk",
                true, trusted);
        server.stop();
        server = new NbdServer(memory, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.2", bound.getPort())),
                new NbdServer.Tls(TlsMode.REQUIRE, TlsCredentials.server(trusted, false)));
        server.start();
        assertThatThrownBy(() -> NbdClient.connect(wrongName).close())
                .isInstanceOf(TlsTransport.TlsHandshakeException.class).hasMessageContaining("127.0.0.2");
    }

    @Test
    void verifyPeerAdmitsOnlyClientsWithACertificateOfItsCa() throws Exception {
        start(TlsMode.REQUIRE, true);
        try (NbdClient client = NbdClient.connect(uri(0, true, trusted))) {
            assertThat(client.size()).isEqualTo(SIZE);
        }
        assertThatThrownBy(() -> connectAndRead(uri(0, true, anonymous))).isInstanceOf(IOException.class);
        Path foreignClient = Files.createDirectories(dir.resolve("foreign"));
        Files.copy(trusted.resolve(TlsCredentials.CA_CERT), foreignClient.resolve(TlsCredentials.CA_CERT));
        Files.copy(stranger.resolve(TlsCredentials.CLIENT_CERT), foreignClient.resolve(TlsCredentials.CLIENT_CERT));
        Files.copy(stranger.resolve(TlsCredentials.CLIENT_KEY), foreignClient.resolve(TlsCredentials.CLIENT_KEY));
        assertThatThrownBy(() -> connectAndRead(uri(0, true, foreignClient))).isInstanceOf(IOException.class);
    }

    @Test
    void aClientThatStallsInTheTlsHandshakeIsCutOffByTheHandshakeTimeout() throws Exception {
        NbdServer.Options defaults = NbdServer.Options.defaults();
        server = new NbdServer(memory, new NbdServer.Options(List.of(new InetSocketAddress("127.0.0.1", 0)), 4, 64,
                64L << 20, Duration.ofMillis(300), defaults.drainTimeout()),
                new NbdServer.Tls(TlsMode.REQUIRE, TlsCredentials.server(trusted, false)));
        server.start();
        try (SocketChannel raw = SocketChannel.open(server.boundAddresses().getFirst())) {
            startTlsAndReadAck(raw);
            // No TLS ClientHello follows: the server must not wait for it forever.
            int read = assertTimeoutPreemptively(Duration.ofSeconds(20), () -> raw.read(ByteBuffer.allocate(64)));
            assertThat(read).as("the server closed the stalled connection").isEqualTo(-1);
        }
        // The server goes on: a new connection gets its greeting (a whole TLS handshake of a real client could itself
        // take longer than this test's 300 ms timeout on a loaded machine).
        try (SocketChannel next = SocketChannel.open(server.boundAddresses().getFirst())) {
            ByteBuffer greeting = ByteBuffer.allocate(NbdProtocol.GREETING_LENGTH);
            readFully(next, greeting);
            assertThat(greeting.getLong(0)).as("the server goes on").isEqualTo(NbdProtocol.INIT_PASSWD);
        }
    }

    @Test
    void plainBytesSentRightAfterStartTlsEndTheConnection() throws Exception {
        start(TlsMode.REQUIRE, false);
        try (SocketChannel raw = SocketChannel.open(server.boundAddresses().getFirst())) {
            ByteBuffer greeting = ByteBuffer.allocate(NbdProtocol.GREETING_LENGTH);
            readFully(raw, greeting);
            // STARTTLS and an INFO option in one write: the client did not wait for the ACK.
            raw.write(ByteBuffer.wrap(ServerHandshakeTest.clientFlags(3)));
            byte[] startTls = ServerHandshakeTest.option(NbdOption.STARTTLS, new byte[0]);
            byte[] info = ServerHandshakeTest.option(NbdOption.INFO, ServerHandshakeTest.goData("disk"));
            raw.write(ByteBuffer.allocate(startTls.length + info.length).put(startTls).put(info).flip());
            ByteBuffer ack = ByteBuffer.allocate(NbdProtocol.OPTION_REPLY_HEADER_LENGTH);
            readFully(raw, ack);
            assertThat(ack.getInt(12)).isEqualTo(OptionReply.ACK.code());
            // At once, not after the 30 s handshake timeout: those bytes belong to no TLS session.
            int read = assertTimeoutPreemptively(Duration.ofSeconds(5), () -> raw.read(ByteBuffer.allocate(64)));
            assertThat(read).as("connection closed, nothing more sent").isEqualTo(-1);
        }
    }

    private static void startTlsAndReadAck(SocketChannel raw) throws IOException {
        readFully(raw, ByteBuffer.allocate(NbdProtocol.GREETING_LENGTH));
        raw.write(ByteBuffer.wrap(ServerHandshakeTest.clientFlags(3)));
        raw.write(ByteBuffer.wrap(ServerHandshakeTest.option(NbdOption.STARTTLS, new byte[0])));
        ByteBuffer ack = ByteBuffer.allocate(NbdProtocol.OPTION_REPLY_HEADER_LENGTH);
        readFully(raw, ack);
        assertThat(ack.getInt(12)).isEqualTo(OptionReply.ACK.code());
    }

    private static void readFully(SocketChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new IOException("closed after " + buffer.position() + " bytes");
            }
        }
    }

    @Test
    void credentialsSayWhichFileIsMissingOrWrong() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertThatThrownBy(() -> TlsCredentials.server(empty, false)).hasMessageContaining("server-cert.pem")
                .hasMessageContaining("does not exist");
        Path swapped = Files.createDirectories(dir.resolve("swapped"));
        Files.copy(trusted.resolve(TlsCredentials.SERVER_CERT), swapped.resolve(TlsCredentials.SERVER_CERT));
        Files.copy(trusted.resolve(TlsCredentials.CLIENT_KEY), swapped.resolve(TlsCredentials.SERVER_KEY));
        assertThatThrownBy(() -> TlsCredentials.server(swapped, false))
                .hasMessageContaining("holds a EC key").hasMessageContaining("RSA");
        assertThatThrownBy(() -> TlsCredentials.client(empty)).hasMessageContaining("ca-cert.pem");
    }

    /**
     * Under TLS 1.3 the client's handshake ends before the server has checked the client's certificate, so a
     * refusal may only show on the first request.
     */
    private void connectAndRead(NbdUri uri) throws Exception {
        try (NbdClient client = NbdClient.connect(uri)) {
            client.read(0, arena.allocate(4096)).get(10, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            throw (Exception) e.getCause();
        }
    }

    private MemorySegment pattern(long length, int seed) {
        MemorySegment segment = arena.allocate(length);
        for (long i = 0; i < length; i++) {
            segment.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 131 + seed));
        }
        return segment;
    }
}
