package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Our client handshake against our server handshake, bytes passed in memory. */
class HandshakeInteropTest {

    private final MemoryExport export = new MemoryExport("disk", 8 << 20);

    @AfterEach
    void closeExport() {
        export.close();
    }

    @Test
    void clientAndServerAgreeOnSizeFlagsAndBlockSizes() throws Exception {
        ClientHandshake client = new ClientHandshake("disk");
        ServerHandshake server = run(client, new ServerHandshake(export));
        assertThat(client.state()).isEqualTo(ClientHandshake.State.TRANSMISSION);
        assertThat(server.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        assertThat(client.size()).isEqualTo(8 << 20);
        assertThat(client.transmissionFlags()).isEqualTo(server.settings().transmissionFlags());
        assertThat(client.structuredReplies()).isTrue();
        assertThat(client.minimumBlockSize()).isEqualTo(1);
        assertThat(client.maximumBlockSize()).isEqualTo(32 << 20);
    }

    @Test
    void clientReportsUnknownExportAsHandshakeRefusal() {
        assertThatThrownBy(() -> run(new ClientHandshake("missing"), new ServerHandshake(export)))
                .isInstanceOf(NbdHandshakeException.class)
                .hasMessageContaining("server refused export 'missing': ERR_UNKNOWN");
    }

    @Test
    void clientRejectsAServerThatIsNotNbd() {
        ClientHandshake client = new ClientHandshake("");
        ByteBuffer junk = ByteBuffer.wrap("HTTP/1.1 400 Bad Request\r\n\r\n".getBytes());
        assertThatThrownBy(() -> client.decode(junk, ByteBuffer.allocate(ClientHandshake.MAX_OUTPUT_BYTES)))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("greeting magic");
    }

    /** Shuttles bytes between the two state machines until neither makes progress. */
    private static ServerHandshake run(ClientHandshake client, ServerHandshake server) throws Exception {
        ByteBuffer toClient = ByteBuffer.allocate(64 * 1024);
        ByteBuffer toServer = ByteBuffer.allocate(64 * 1024);
        ServerHandshake.encodeGreeting(toClient);
        for (int round = 0; round < 100; round++) {
            toClient.flip();
            client.decode(toClient, toServer);
            toClient.compact();
            toServer.flip();
            server.decode(toServer, toClient);
            toServer.compact();
            if (client.state() == ClientHandshake.State.TRANSMISSION) {
                return server;
            }
        }
        throw new AssertionError("handshake did not finish: client " + client.state() + ", server "
                + server.state());
    }
}
