package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.pcache.nbd.ServerHandshakeTest.clientFlags;
import static org.pcache.nbd.ServerHandshakeTest.goData;
import static org.pcache.nbd.ServerHandshakeTest.metaData;
import static org.pcache.nbd.ServerHandshakeTest.option;
import static org.pcache.nbd.ServerHandshakeTest.rawOption;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** NBD_OPT_STARTTLS in the server's option loop: the three TLS modes, proto.md's FORCEDTLS rules, the state reset. */
class ServerHandshakeTlsTest {

    private final MemoryExport export = new MemoryExport("disk", 1 << 20);
    private final ByteBuffer out = ByteBuffer.allocate(64 * 1024);
    private final ByteBuffer in = ByteBuffer.allocate(ServerHandshake.MIN_INPUT_CAPACITY).flip();
    private ServerHandshake handshake;

    @AfterEach
    void closeExport() {
        export.close();
    }

    @Test
    void offAnswersStartTlsUnsupported() throws Exception {
        handshake = new ServerHandshake(export, TlsMode.OFF);
        feed(clientFlags(3), option(NbdOption.STARTTLS, new byte[0]), option(NbdOption.GO, goData("disk")));
        assertThat(types()).first().isEqualTo(OptionReply.ERR_UNSUP.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
    }

    @Test
    void requireAnswersEveryOptionButStartTlsAndAbortWithTlsRequired() throws Exception {
        handshake = new ServerHandshake(export, TlsMode.REQUIRE);
        feed(clientFlags(3), option(NbdOption.LIST, new byte[0]), option(NbdOption.INFO, goData("disk")),
                option(NbdOption.GO, goData("disk")), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                rawOption(99, new byte[3]), option(NbdOption.ABORT, new byte[0]));
        assertThat(types()).containsExactly(OptionReply.ERR_TLS_REQD.code(), OptionReply.ERR_TLS_REQD.code(),
                OptionReply.ERR_TLS_REQD.code(), OptionReply.ERR_TLS_REQD.code(), OptionReply.ERR_TLS_REQD.code(),
                OptionReply.ACK.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.CLOSED);
    }

    @Test
    void requireEndsTheSessionOnExportNameBeforeTls() {
        handshake = new ServerHandshake(export, TlsMode.REQUIRE);
        assertThatThrownBy(() -> feed(clientFlags(3), option(NbdOption.EXPORT_NAME, new byte[0])))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("TLS");
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.CLOSED);
        assertThat(out.position()).as("nothing sent: EXPORT_NAME has no error reply").isZero();
    }

    @Test
    void startTlsIsAcknowledgedAndWaitsForTheTlsHandshake() throws Exception {
        handshake = new ServerHandshake(export, TlsMode.REQUIRE);
        feed(clientFlags(3), option(NbdOption.STARTTLS, new byte[0]));
        assertThat(types()).containsExactly(OptionReply.ACK.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.STARTTLS);
        assertThat(handshake.decode(in, out)).as("no option is read before TLS is up")
                .isEqualTo(ServerHandshake.State.STARTTLS);
    }

    @Test
    void afterTlsOptionsAreServedAndEarlierStateIsForgotten() throws Exception {
        handshake = new ServerHandshake(export, TlsMode.ON);
        feed(clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.SET_META_CONTEXT, metaData("disk", NbdProtocol.BASE_ALLOCATION)),
                option(NbdOption.STARTTLS, new byte[0]));
        handshake.tlsStarted();
        out.clear();
        feed(option(NbdOption.STARTTLS, new byte[0]), option(NbdOption.GO, goData("disk")));
        assertThat(types()).first().as("STARTTLS inside TLS").isEqualTo(OptionReply.ERR_INVALID.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        assertThat(handshake.settings().structuredReplies()).as("structured replies negotiated before TLS")
                .isFalse();
        assertThat(handshake.settings().baseAllocation()).as("meta context set before TLS").isFalse();
    }

    @Test
    void startTlsWithDataIsInvalid() throws Exception {
        handshake = new ServerHandshake(export, TlsMode.REQUIRE);
        feed(clientFlags(3), option(NbdOption.STARTTLS, new byte[2]));
        assertThat(types()).containsExactly(OptionReply.ERR_INVALID.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.OPTION_HEADER);
    }

    private void feed(byte[]... parts) throws NbdProtocolException {
        for (byte[] part : parts) {
            in.compact().put(part).flip();
            int before;
            do {
                before = in.position();
                ServerHandshake.State state = handshake.decode(in, out);
                if (state != ServerHandshake.State.OPTION_HEADER && state != ServerHandshake.State.OPTION_DATA
                        && state != ServerHandshake.State.CLIENT_FLAGS) {
                    return;
                }
            } while (in.position() != before);
        }
    }

    private List<Integer> types() {
        ByteBuffer view = out.duplicate().flip();
        List<Integer> types = new ArrayList<>();
        while (view.remaining() >= NbdProtocol.OPTION_REPLY_HEADER_LENGTH) {
            assertThat(view.getLong()).isEqualTo(NbdProtocol.OPTION_REPLY_MAGIC);
            view.getInt();
            types.add(view.getInt());
            int length = view.getInt();
            view.position(view.position() + length);
        }
        return types;
    }
}
