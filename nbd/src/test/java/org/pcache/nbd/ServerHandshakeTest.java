package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class ServerHandshakeTest {

    private final MemoryExport export = new MemoryExport("disk", 1 << 20);
    private final ServerHandshake handshake = new ServerHandshake(export);
    private final ByteBuffer out = ByteBuffer.allocate(64 * 1024);
    private final ByteBuffer in = ByteBuffer.allocate(ServerHandshake.MIN_INPUT_CAPACITY).flip();

    /** One option reply read back from the server's output. */
    record Reply(int option, int type, ByteBuffer payload) {
    }

    @AfterEach
    void closeExport() {
        export.close();
    }

    @Test
    void greetingOffersFixedNewstyleAndNoZeroes() {
        ServerHandshake.encodeGreeting(out);
        out.flip();
        assertThat(out.getLong()).isEqualTo(NbdProtocol.INIT_PASSWD);
        assertThat(out.getLong()).isEqualTo(NbdProtocol.IHAVEOPT);
        assertThat(out.getShort()).isEqualTo((short) 3);
    }

    @Test
    void exportNameEntersTransmissionWithZeroPaddingUnlessNoZeroes() throws Exception {
        feed(clientFlags(NbdProtocol.FLAG_C_FIXED_NEWSTYLE), option(NbdOption.EXPORT_NAME, utf8("disk")));
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        out.flip();
        assertThat(out.getLong()).isEqualTo(1 << 20);
        assertThat(out.getShort() & NbdProtocol.FLAG_HAS_FLAGS).isEqualTo(NbdProtocol.FLAG_HAS_FLAGS);
        assertThat(out.remaining()).isEqualTo(NbdProtocol.EXPORT_NAME_ZEROES);
    }

    @Test
    void exportNameWithNoZeroesSendsOnlySizeAndFlags() throws Exception {
        feed(clientFlags(3), option(NbdOption.EXPORT_NAME, new byte[0]));
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        assertThat(out.position()).isEqualTo(NbdProtocol.EXPORT_NAME_REPLY_LENGTH);
    }

    @Test
    void unknownExportNameIsTerminal() {
        assertThatThrownBy(() -> feed(clientFlags(3), option(NbdOption.EXPORT_NAME, utf8("nope"))))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("unknown export 'nope'");
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.CLOSED);
    }

    @Test
    void goAnswersExportInfoBlockSizeAndAckThenTransmits() throws Exception {
        feed(clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.GO, goData("disk", NbdProtocol.INFO_NAME, NbdProtocol.INFO_DESCRIPTION)));
        List<Reply> replies = replies();
        assertThat(replies).extracting(Reply::type).containsExactly(OptionReply.ACK.code(),
                OptionReply.INFO.code(), OptionReply.INFO.code(), OptionReply.INFO.code(), OptionReply.INFO.code(),
                OptionReply.ACK.code());
        ByteBuffer exportInfo = replies.get(1).payload();
        assertThat(exportInfo.getShort()).isEqualTo((short) NbdProtocol.INFO_EXPORT);
        assertThat(exportInfo.getLong()).isEqualTo(1 << 20);
        int flags = Short.toUnsignedInt(exportInfo.getShort());
        assertThat(flags & NbdProtocol.FLAG_SEND_DF).isNotZero();
        assertThat(flags & NbdProtocol.FLAG_CAN_MULTI_CONN).isNotZero();
        ByteBuffer blockSize = replies.get(4).payload();
        assertThat(blockSize.getShort()).isEqualTo((short) NbdProtocol.INFO_BLOCK_SIZE);
        assertThat(List.of(blockSize.getInt(), blockSize.getInt(), blockSize.getInt()))
                .containsExactly(1, 4096, 64 << 20);
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        assertThat(handshake.settings().structuredReplies()).isTrue();
    }

    @Test
    void infoStaysInNegotiation() throws Exception {
        feed(clientFlags(3), option(NbdOption.INFO, goData("")));
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.OPTION_HEADER);
        assertThat(replies()).extracting(Reply::type).endsWith(OptionReply.ACK.code());
    }

    @Test
    void goForUnknownExportFailsWithErrUnknownAndNegotiationGoesOn() throws Exception {
        feed(clientFlags(3), option(NbdOption.GO, goData("other")));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ERR_UNKNOWN.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.OPTION_HEADER);
    }

    @Test
    void goWhoseNameLengthLiesIsInvalidAndNegotiationGoesOn() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(10).putInt(1000).put(utf8("ab")).putShort((short) 0).putShort((short) 0);
        feed(clientFlags(3), option(NbdOption.GO, data.array()), option(NbdOption.GO, goData("disk")));
        assertThat(replies()).extracting(Reply::type).first().isEqualTo(OptionReply.ERR_INVALID.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
    }

    @Test
    void goWhoseInfoCountLiesIsInvalid() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(8).putInt(0).putShort((short) 5).putShort((short) 1);
        feed(clientFlags(3), option(NbdOption.GO, data.array()));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ERR_INVALID.code());
    }

    @Test
    void unknownOptionIsUnsupportedAndNegotiationGoesOn() throws Exception {
        feed(clientFlags(3), rawOption(99, new byte[7]), option(NbdOption.STARTTLS, new byte[0]));
        List<Reply> replies = replies();
        assertThat(replies).extracting(Reply::option).containsExactly(99, NbdOption.STARTTLS.code());
        assertThat(replies).extracting(Reply::type).containsOnly(OptionReply.ERR_UNSUP.code());
    }

    @Test
    void listNamesTheExportAndRejectsData() throws Exception {
        feed(clientFlags(3), option(NbdOption.LIST, new byte[0]), option(NbdOption.LIST, new byte[1]));
        List<Reply> replies = replies();
        assertThat(replies).extracting(Reply::type).containsExactly(OptionReply.SERVER.code(),
                OptionReply.ACK.code(), OptionReply.ERR_INVALID.code());
        ByteBuffer server = replies.get(0).payload();
        byte[] name = new byte[server.getInt()];
        server.get(name);
        assertThat(new String(name, StandardCharsets.UTF_8)).isEqualTo("disk");
    }

    @Test
    void abortIsAcknowledgedAndCloses() throws Exception {
        feed(clientFlags(3), option(NbdOption.ABORT, new byte[0]));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ACK.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.CLOSED);
    }

    @Test
    void metaContextNeedsStructuredRepliesFirst() throws Exception {
        feed(clientFlags(3), option(NbdOption.SET_META_CONTEXT, metaData("disk", NbdProtocol.BASE_ALLOCATION)));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ERR_INVALID.code());
    }

    @Test
    void setMetaContextSelectsBaseAllocationWithItsId() throws Exception {
        feed(clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.SET_META_CONTEXT, metaData("", "qemu:dirty-bitmap:x", NbdProtocol.BASE_ALLOCATION)),
                option(NbdOption.GO, goData("disk")));
        List<Reply> replies = replies();
        assertThat(replies.get(1).type()).isEqualTo(OptionReply.META_CONTEXT.code());
        assertThat(replies.get(1).payload().getInt()).isEqualTo(ServerHandshake.BASE_ALLOCATION_ID);
        assertThat(handshake.settings().baseAllocation()).isTrue();
    }

    @Test
    void listMetaContextWithoutQueriesListsBaseAllocation() throws Exception {
        feed(clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.LIST_META_CONTEXT, metaData("disk")));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ACK.code(),
                OptionReply.META_CONTEXT.code(), OptionReply.ACK.code());
    }

    @Test
    void metaContextWithLyingQueryLengthIsInvalid() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(16).putInt(0).putInt(1).putInt(9999).putInt(0);
        feed(clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.SET_META_CONTEXT, data.array()));
        assertThat(replies()).extracting(Reply::type).containsExactly(OptionReply.ACK.code(),
                OptionReply.ERR_INVALID.code());
    }

    @Test
    void oversizedOptionIsSkippedWithoutBufferingAndAnsweredTooBig() throws Exception {
        int length = ServerHandshake.MAX_OPTION_LENGTH + 1;
        ByteBuffer header = ByteBuffer.allocate(NbdProtocol.OPTION_HEADER_LENGTH)
                .putLong(NbdProtocol.IHAVEOPT).putInt(NbdOption.GO.code()).putInt(length);
        feed(clientFlags(3), header.array());
        for (int sent = 0; sent < length; sent += 1000) {
            feed(new byte[Math.min(1000, length - sent)]);
        }
        feed(option(NbdOption.GO, goData("disk")));
        assertThat(replies()).extracting(Reply::type).first().isEqualTo(OptionReply.ERR_TOO_BIG.code());
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
    }

    @Test
    void tooManyOptionsIsTerminal() {
        byte[][] options = new byte[ServerHandshake.MAX_OPTIONS + 2][];
        options[0] = clientFlags(3);
        for (int i = 1; i < options.length; i++) {
            options[i] = rawOption(99, new byte[0]);
        }
        assertThatThrownBy(() -> feed(options)).isInstanceOf(NbdProtocolException.class)
                .hasMessageContaining("more than " + ServerHandshake.MAX_OPTIONS);
    }

    @Test
    void badOptionMagicIsTerminal() {
        ByteBuffer bad = ByteBuffer.allocate(16).putLong(0x1234).putInt(7).putInt(0);
        assertThatThrownBy(() -> feed(clientFlags(3), bad.array())).isInstanceOf(NbdProtocolException.class)
                .hasMessageContaining("option magic 0x1234");
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.CLOSED);
    }

    @Test
    void unknownClientFlagsAreTerminal() {
        assertThatThrownBy(() -> feed(clientFlags(0x10))).isInstanceOf(NbdProtocolException.class)
                .hasMessageContaining("client flags 0x10");
    }

    @Test
    void bytesArrivingOneAtATimeGiveTheSameResult() throws Exception {
        byte[][] parts = {clientFlags(3), option(NbdOption.STRUCTURED_REPLY, new byte[0]),
                option(NbdOption.GO, goData("disk"))};
        for (byte[] part : parts) {
            for (byte b : part) {
                feed(new byte[] {b});
            }
        }
        assertThat(handshake.state()).isEqualTo(ServerHandshake.State.TRANSMISSION);
        assertThat(handshake.settings().structuredReplies()).isTrue();
    }

    /** Appends the parts to the input and decodes until the handshake needs more bytes or ends. */
    private void feed(byte[]... parts) throws NbdProtocolException {
        for (byte[] part : parts) {
            in.compact().put(part).flip();
            int before;
            do {
                before = in.position();
                ServerHandshake.State state = handshake.decode(in, out);
                if (state == ServerHandshake.State.TRANSMISSION || state == ServerHandshake.State.CLOSED) {
                    return;
                }
            } while (in.position() != before);
        }
    }

    private List<Reply> replies() {
        ByteBuffer view = out.duplicate().flip();
        List<Reply> replies = new ArrayList<>();
        while (view.remaining() >= NbdProtocol.OPTION_REPLY_HEADER_LENGTH) {
            assertThat(view.getLong()).isEqualTo(NbdProtocol.OPTION_REPLY_MAGIC);
            int option = view.getInt();
            int type = view.getInt();
            int length = view.getInt();
            replies.add(new Reply(option, type, view.slice(view.position(), length)));
            view.position(view.position() + length);
        }
        return replies;
    }

    static byte[] clientFlags(int flags) {
        return ByteBuffer.allocate(4).putInt(flags).array();
    }

    static byte[] option(NbdOption option, byte[] data) {
        return rawOption(option.code(), data);
    }

    static byte[] rawOption(int code, byte[] data) {
        return ByteBuffer.allocate(NbdProtocol.OPTION_HEADER_LENGTH + data.length)
                .putLong(NbdProtocol.IHAVEOPT).putInt(code).putInt(data.length).put(data).array();
    }

    static byte[] goData(String name, int... infos) {
        byte[] bytes = utf8(name);
        ByteBuffer data = ByteBuffer.allocate(4 + bytes.length + 2 + 2 * infos.length)
                .putInt(bytes.length).put(bytes).putShort((short) infos.length);
        for (int info : infos) {
            data.putShort((short) info);
        }
        return data.array();
    }

    static byte[] metaData(String name, String... queries) {
        int length = 4 + utf8(name).length + 4;
        for (String query : queries) {
            length += 4 + utf8(query).length;
        }
        ByteBuffer data = ByteBuffer.allocate(length).putInt(utf8(name).length).put(utf8(name))
                .putInt(queries.length);
        for (String query : queries) {
            data.putInt(utf8(query).length).put(utf8(query));
        }
        return data.array();
    }

    static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }
}
