package org.pcache.nbd;

import static org.pcache.nbd.NbdProtocol.MAX_STRING_LENGTH;
import static org.pcache.nbd.NbdProtocol.OPTION_HEADER_LENGTH;
import static org.pcache.nbd.NbdProtocol.OPTION_REPLY_HEADER_LENGTH;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Set;

/**
 * The server side of fixed newstyle negotiation as a pure state machine: the client's bytes go in, option
 * replies come out. It knows nothing of sockets; it asks the export only for its name, description, size and
 * capabilities.
 *
 * <p>Limits on what a client may send (proto.md lets a server cut off a client that looks like a denial of
 * service; every other malformed option gets NBD_REP_ERR_INVALID and negotiation goes on):
 * <table>
 *   <caption>handshake limits</caption>
 *   <tr><th>constant</th><th>value</th><th>when exceeded</th></tr>
 *   <tr><td>{@link #MAX_OPTIONS}</td><td>32 options</td><td>hard disconnect</td></tr>
 *   <tr><td>{@link #MAX_OPTION_LENGTH}</td><td>16 KiB of option data</td><td>data skipped without
 *       buffering, NBD_REP_ERR_TOO_BIG (hard disconnect for NBD_OPT_EXPORT_NAME, which cannot fail)</td></tr>
 *   <tr><td>{@link NbdProtocol#MAX_STRING_LENGTH}</td><td>4096 bytes per name or query</td>
 *       <td>NBD_REP_ERR_INVALID</td></tr>
 * </table>
 *
 * <p>Threading: owned by one connection's reader thread.
 */
final class ServerHandshake {
    /*
     * Implementation notes.
     *
     * States move forward only, except the option loop:
     *
     *   CLIENT_FLAGS -> OPTION_HEADER -> OPTION_DATA ----> OPTION_HEADER (next option)
     *                        |                  \------> TRANSMISSION (EXPORT_NAME, or GO acknowledged)
     *                        \-> OPTION_DISCARD  \-----> CLOSED (ABORT acknowledged, or a terminal error)
     *                                             \----> STARTTLS --tlsStarted()--> OPTION_HEADER
     *
     * decode() handles at most one option per call, so the caller can send that option's replies before the
     * client, which must wait for them, sends the next one. An option is only parsed once all of its data is
     * in the input buffer; MAX_OPTION_LENGTH bounds that buffer.
     */

    /**
     * STARTTLS: NBD_OPT_STARTTLS was acknowledged; the caller sends the ACK, runs the TLS handshake, then calls
     * {@link #tlsStarted}.
     */
    enum State { CLIENT_FLAGS, OPTION_HEADER, OPTION_DATA, OPTION_DISCARD, STARTTLS, TRANSMISSION, CLOSED }

    static final int MAX_OPTIONS = 32;
    static final int MAX_OPTION_LENGTH = 16 * 1024;
    /** Context id given to base:allocation by NBD_OPT_SET_META_CONTEXT. */
    static final int BASE_ALLOCATION_ID = 1;
    /**
     * Output space the replies to one option can take: NBD_OPT_GO answering with export, name, description
     * (each up to 4096 bytes), block size and ACK; NBD_OPT_LIST's two replies are smaller.
     */
    static final int MAX_REPLY_BYTES = 5 * OPTION_REPLY_HEADER_LENGTH + Short.BYTES + Long.BYTES + Short.BYTES
            + 2 * (Short.BYTES + MAX_STRING_LENGTH) + Short.BYTES + 3 * Integer.BYTES;
    /** Bytes the caller's input buffer must be able to hold for the largest option decode() waits for. */
    static final int MIN_INPUT_CAPACITY = OPTION_HEADER_LENGTH + MAX_OPTION_LENGTH;

    private static final int KNOWN_CLIENT_FLAGS = NbdProtocol.FLAG_C_FIXED_NEWSTYLE | NbdProtocol.FLAG_C_NO_ZEROES;
    private static final int INFO_EXPORT_LENGTH = Short.BYTES + Long.BYTES + Short.BYTES;
    private static final int INFO_BLOCK_SIZE_LENGTH = Short.BYTES + 3 * Integer.BYTES;

    private final NbdExport export;
    private final TlsMode tls;
    private boolean tlsActive;
    private State state = State.CLIENT_FLAGS;
    private boolean noZeroes;
    private boolean structuredReplies;
    private boolean baseAllocation;
    private int optionCount;
    /** Code of the option whose data is being read or skipped. */
    private int option;
    private int optionLength;
    private long discardRemaining;
    private TransmissionSettings settings;

    ServerHandshake(NbdExport export) {
        this(export, TlsMode.OFF);
    }

    ServerHandshake(NbdExport export, TlsMode tls) {
        this.export = export;
        this.tls = tls;
    }

    /**
     * The TLS handshake that followed the acknowledged NBD_OPT_STARTTLS succeeded: negotiation goes on over TLS,
     * with nothing negotiated before it kept (proto.md).
     */
    void tlsStarted() {
        if (state != State.STARTTLS) {
            throw new IllegalStateException("no STARTTLS acknowledged: " + state);
        }
        tlsActive = true;
        structuredReplies = false;
        baseAllocation = false;
        state = State.OPTION_HEADER;
    }

    /** The server's opening message: magic, IHAVEOPT, handshake flags. */
    static void encodeGreeting(ByteBuffer out) {
        out.putLong(NbdProtocol.INIT_PASSWD)
                .putLong(NbdProtocol.IHAVEOPT)
                .putShort((short) (NbdProtocol.FLAG_FIXED_NEWSTYLE | NbdProtocol.FLAG_NO_ZEROES));
    }

    State state() {
        return state;
    }

    /** Valid once the state is {@link State#TRANSMISSION}. */
    TransmissionSettings settings() {
        if (settings == null) {
            throw new IllegalStateException("handshake not finished: " + state);
        }
        return settings;
    }

    /**
     * Consumes what it can of {@code in} (at most one option) and appends replies to {@code out}, which must
     * have {@link #MAX_REPLY_BYTES} free. A terminal error moves to {@link State#CLOSED} and throws.
     */
    State decode(ByteBuffer in, ByteBuffer out) throws NbdProtocolException {
        assert out.remaining() >= MAX_REPLY_BYTES : "output space " + out.remaining();
        while (true) {
            switch (state) {
                case CLIENT_FLAGS -> {
                    if (in.remaining() < NbdProtocol.CLIENT_FLAGS_LENGTH) {
                        return state;
                    }
                    decodeClientFlags(in.getInt());
                }
                case OPTION_HEADER -> {
                    if (in.remaining() < OPTION_HEADER_LENGTH) {
                        return state;
                    }
                    decodeOptionHeader(in);
                }
                case OPTION_DATA -> {
                    if (in.remaining() < optionLength) {
                        return state;
                    }
                    ByteBuffer data = in.slice(in.position(), optionLength);
                    in.position(in.position() + optionLength);
                    state = State.OPTION_HEADER;
                    handleOption(data, out);
                    return state;
                }
                case OPTION_DISCARD -> {
                    int skip = (int) Math.min(in.remaining(), discardRemaining);
                    in.position(in.position() + skip);
                    discardRemaining -= skip;
                    if (discardRemaining == 0) {
                        finishDiscard(out);
                    }
                    return state;
                }
                case STARTTLS, TRANSMISSION, CLOSED -> {
                    return state;
                }
            }
        }
    }

    private void decodeClientFlags(int flags) throws NbdProtocolException {
        // proto.md: the server MUST drop the connection on a client flag it does not know.
        if ((flags & ~KNOWN_CLIENT_FLAGS) != 0) {
            throw fail("client flags 0x" + Integer.toHexString(flags) + " (expected only bits 0x"
                    + Integer.toHexString(KNOWN_CLIENT_FLAGS) + ")");
        }
        noZeroes = (flags & NbdProtocol.FLAG_C_NO_ZEROES) != 0;
        state = State.OPTION_HEADER;
    }

    private void decodeOptionHeader(ByteBuffer in) throws NbdProtocolException {
        long magic = in.getLong();
        if (magic != NbdProtocol.IHAVEOPT) {
            throw fail("option magic 0x" + Long.toHexString(magic) + " (expected IHAVEOPT 0x"
                    + Long.toHexString(NbdProtocol.IHAVEOPT) + ")");
        }
        option = in.getInt();
        long length = Integer.toUnsignedLong(in.getInt());
        if (++optionCount > MAX_OPTIONS) {
            throw fail("more than " + MAX_OPTIONS + " options");
        }
        if (length > MAX_OPTION_LENGTH) {
            discardRemaining = length;
            state = State.OPTION_DISCARD;
        } else {
            optionLength = (int) length;
            state = State.OPTION_DATA;
        }
    }

    private void finishDiscard(ByteBuffer out) throws NbdProtocolException {
        if (option == NbdOption.EXPORT_NAME.code()) {
            throw fail("NBD_OPT_EXPORT_NAME data too long (expected <= " + MAX_OPTION_LENGTH + " bytes)");
        }
        state = State.OPTION_HEADER;
        replyError(out, OptionReply.ERR_TOO_BIG, "option data longer than " + MAX_OPTION_LENGTH + " bytes");
    }

    private void handleOption(ByteBuffer data, ByteBuffer out) throws NbdProtocolException {
        NbdOption known = NbdOption.tryDecode(option);
        if (tlsRequired(known, out)) {
            return;
        }
        if (known == null) {
            replyError(out, OptionReply.ERR_UNSUP, "option " + option + " is not supported");
            return;
        }
        try {
            switch (known) {
                case EXPORT_NAME -> exportName(data, out);
                case ABORT -> {
                    // proto.md: the server MUST reply with NBD_REP_ACK; data, if any, is ignored.
                    reply(out, OptionReply.ACK, 0);
                    state = State.CLOSED;
                }
                case LIST -> list(data, out);
                case STARTTLS -> startTls(data, out);
                case INFO, GO -> info(known, data, out);
                case STRUCTURED_REPLY -> structuredReply(data, out);
                case LIST_META_CONTEXT, SET_META_CONTEXT -> metaContext(known, data, out);
            }
        } catch (InvalidOption e) {
            replyError(out, OptionReply.ERR_INVALID, e.getMessage());
        }
    }

    /**
     * The FORCEDTLS gate: before TLS under {@link TlsMode#REQUIRE}, answers every option but STARTTLS and ABORT
     * (known or not) with NBD_REP_ERR_TLS_REQD and ends the session on NBD_OPT_EXPORT_NAME; true when it answered.
     */
    private boolean tlsRequired(NbdOption known, ByteBuffer out) throws NbdProtocolException {
        if (tls != TlsMode.REQUIRE || tlsActive || known == NbdOption.STARTTLS || known == NbdOption.ABORT) {
            return false;
        }
        if (known == NbdOption.EXPORT_NAME) {
            throw fail("NBD_OPT_EXPORT_NAME before TLS, which this server requires");
        }
        replyError(out, OptionReply.ERR_TLS_REQD, "this server requires TLS: send NBD_OPT_STARTTLS first");
        return true;
    }

    private void startTls(ByteBuffer data, ByteBuffer out) throws InvalidOption {
        if (tls == TlsMode.OFF) {
            replyError(out, OptionReply.ERR_UNSUP, "TLS is not enabled on this server");
            return;
        }
        if (data.hasRemaining()) {
            throw new InvalidOption("NBD_OPT_STARTTLS takes no data, got " + data.remaining() + " bytes");
        }
        if (tlsActive) {
            throw new InvalidOption("TLS is already negotiated");
        }
        reply(out, OptionReply.ACK, 0);
        state = State.STARTTLS;
    }

    private void exportName(ByteBuffer data, ByteBuffer out) throws NbdProtocolException {
        String name;
        try {
            name = string(data, data.remaining());
        } catch (InvalidOption e) {
            throw fail("NBD_OPT_EXPORT_NAME: " + e.getMessage());
        }
        // proto.md: an export that cannot be served MUST end the session; this option has no error reply.
        if (!selectsExport(name)) {
            throw fail("NBD_OPT_EXPORT_NAME: unknown export '" + name + "'");
        }
        int flags = transmissionFlags(export.capabilities(), structuredReplies);
        out.putLong(export.size()).putShort((short) flags);
        if (!noZeroes) {
            out.put(new byte[NbdProtocol.EXPORT_NAME_ZEROES]);
        }
        enterTransmission(flags);
    }

    private void list(ByteBuffer data, ByteBuffer out) throws InvalidOption {
        if (data.hasRemaining()) {
            throw new InvalidOption("NBD_OPT_LIST takes no data, got " + data.remaining() + " bytes");
        }
        byte[] name = utf8(export.name());
        byte[] description = utf8(export.description());
        reply(out, OptionReply.SERVER, Integer.BYTES + name.length + description.length);
        out.putInt(name.length).put(name).put(description);
        reply(out, OptionReply.ACK, 0);
    }

    private void info(NbdOption which, ByteBuffer data, ByteBuffer out) throws InvalidOption {
        String name = string(data, lengthField(data, Short.BYTES, "export name"));
        if (data.remaining() < Short.BYTES) {
            throw new InvalidOption(which + ": missing number of information requests");
        }
        int requests = Short.toUnsignedInt(data.getShort());
        if (data.remaining() != requests * Short.BYTES) {
            throw new InvalidOption(which + ": " + requests + " information requests need " + requests * Short.BYTES
                    + " bytes, option has " + data.remaining());
        }
        boolean wantName = false;
        boolean wantDescription = false;
        for (int i = 0; i < requests; i++) {
            int type = Short.toUnsignedInt(data.getShort());
            wantName |= type == NbdProtocol.INFO_NAME;
            wantDescription |= type == NbdProtocol.INFO_DESCRIPTION;
        }
        if (!selectsExport(name)) {
            replyError(out, OptionReply.ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        int flags = transmissionFlags(export.capabilities(), structuredReplies);
        // proto.md: NBD_INFO_EXPORT MUST precede the ACK even when not requested (qemu relies on it).
        reply(out, OptionReply.INFO, INFO_EXPORT_LENGTH);
        out.putShort((short) NbdProtocol.INFO_EXPORT).putLong(export.size()).putShort((short) flags);
        if (wantName) {
            replyInfoString(out, NbdProtocol.INFO_NAME, export.name());
        }
        if (wantDescription && !export.description().isEmpty()) {
            replyInfoString(out, NbdProtocol.INFO_DESCRIPTION, export.description());
        }
        // Sent even unrequested: clients must ignore what they did not ask for, and qemu uses it when asked.
        reply(out, OptionReply.INFO, INFO_BLOCK_SIZE_LENGTH);
        out.putShort((short) NbdProtocol.INFO_BLOCK_SIZE)
                .putInt(NbdProtocol.MIN_BLOCK_SIZE)
                .putInt(NbdProtocol.PREFERRED_BLOCK_SIZE)
                .putInt(NbdProtocol.MAX_REQUEST_LENGTH);
        reply(out, OptionReply.ACK, 0);
        if (which == NbdOption.GO) {
            enterTransmission(flags);
        }
    }

    private void structuredReply(ByteBuffer data, ByteBuffer out) throws InvalidOption {
        if (data.hasRemaining()) {
            throw new InvalidOption("NBD_OPT_STRUCTURED_REPLY takes no data, got " + data.remaining() + " bytes");
        }
        if (structuredReplies) {
            throw new InvalidOption("structured replies already negotiated");
        }
        structuredReplies = true;
        reply(out, OptionReply.ACK, 0);
    }

    private void metaContext(NbdOption which, ByteBuffer data, ByteBuffer out) throws InvalidOption {
        if (which == NbdOption.SET_META_CONTEXT) {
            // proto.md: SET replaces the selection, including when it fails.
            baseAllocation = false;
        }
        if (!structuredReplies) {
            throw new InvalidOption(which + " needs NBD_OPT_STRUCTURED_REPLY first");
        }
        String name = string(data, lengthField(data, Integer.BYTES, "export name"));
        if (data.remaining() < Integer.BYTES) {
            throw new InvalidOption(which + ": missing number of queries");
        }
        long queries = Integer.toUnsignedLong(data.getInt());
        boolean selected = queries == 0 && which == NbdOption.LIST_META_CONTEXT;
        for (long i = 0; i < queries; i++) {
            String query = string(data, lengthField(data, 0, "query"));
            selected |= query.equals(NbdProtocol.BASE_ALLOCATION)
                    || (which == NbdOption.LIST_META_CONTEXT && query.equals("base:"));
        }
        if (data.hasRemaining()) {
            throw new InvalidOption(which + ": " + data.remaining() + " bytes after the last query");
        }
        if (!selectsExport(name)) {
            replyError(out, OptionReply.ERR_UNKNOWN, "no export named '" + name + "'");
            return;
        }
        if (selected) {
            byte[] context = utf8(NbdProtocol.BASE_ALLOCATION);
            reply(out, OptionReply.META_CONTEXT, Integer.BYTES + context.length);
            // proto.md: the id in a LIST reply is reserved and SHOULD be zero.
            out.putInt(which == NbdOption.SET_META_CONTEXT ? BASE_ALLOCATION_ID : 0).put(context);
        }
        if (which == NbdOption.SET_META_CONTEXT) {
            baseAllocation = selected;
        }
        reply(out, OptionReply.ACK, 0);
    }

    private void enterTransmission(int flags) {
        settings = new TransmissionSettings(flags, structuredReplies, baseAllocation);
        state = State.TRANSMISSION;
    }

    private boolean selectsExport(String name) {
        return name.isEmpty() || name.equals(export.name());
    }

    /** Transmission flags for an export with these capabilities. */
    static int transmissionFlags(Set<NbdExport.Capability> capabilities, boolean structuredReplies) {
        int flags = NbdProtocol.FLAG_HAS_FLAGS;
        for (NbdExport.Capability capability : capabilities) {
            flags |= switch (capability) {
                case FLUSH -> NbdProtocol.FLAG_SEND_FLUSH;
                case FUA -> NbdProtocol.FLAG_SEND_FUA;
                case TRIM -> NbdProtocol.FLAG_SEND_TRIM;
                // FAST_ZERO is always advertised with write-zeroes: a request the export cannot do fast fails
                // at once with ENOTSUP, which proto.md counts as a fast answer.
                case WRITE_ZEROES -> NbdProtocol.FLAG_SEND_WRITE_ZEROES | NbdProtocol.FLAG_SEND_FAST_ZERO;
                case FAST_ZERO -> 0;
                case CACHE -> NbdProtocol.FLAG_SEND_CACHE;
                case MULTI_CONN -> NbdProtocol.FLAG_CAN_MULTI_CONN;
                case READ_ONLY -> NbdProtocol.FLAG_READ_ONLY;
            };
        }
        // proto.md: NBD_FLAG_SEND_DF MUST be clear unless structured replies were negotiated.
        return structuredReplies ? flags | NbdProtocol.FLAG_SEND_DF : flags;
    }

    /**
     * Reads a 32-bit length field and checks that the string it announces, plus {@code trailing} bytes that
     * must follow it, fit in what is left of the option.
     */
    private static int lengthField(ByteBuffer data, int trailing, String what) throws InvalidOption {
        if (data.remaining() < Integer.BYTES) {
            throw new InvalidOption("option data ends before the " + what + " length");
        }
        long length = Integer.toUnsignedLong(data.getInt());
        if (length > data.remaining() - trailing) {
            throw new InvalidOption(what + " length " + length + " exceeds the " + (data.remaining() - trailing)
                    + " bytes left in the option");
        }
        return (int) length;
    }

    /** A protocol string: UTF-8, no NUL, at most 4096 bytes (proto.md "Conventions"). */
    private static String string(ByteBuffer data, int length) throws InvalidOption {
        if (length > MAX_STRING_LENGTH) {
            throw new InvalidOption("string of " + length + " bytes (expected <= " + MAX_STRING_LENGTH + ")");
        }
        ByteBuffer bytes = data.slice(data.position(), length);
        data.position(data.position() + length);
        CharBuffer chars;
        try {
            chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes);
        } catch (CharacterCodingException e) {
            throw new InvalidOption("string is not valid UTF-8");
        }
        String string = chars.toString();
        if (string.indexOf('\0') >= 0) {
            throw new InvalidOption("string contains NUL");
        }
        return string;
    }

    private void replyInfoString(ByteBuffer out, int infoType, String value) {
        byte[] bytes = utf8(value);
        reply(out, OptionReply.INFO, Short.BYTES + bytes.length);
        out.putShort((short) infoType).put(bytes);
    }

    private void replyError(ByteBuffer out, OptionReply error, String message) {
        byte[] bytes = utf8(message);
        reply(out, error, bytes.length);
        out.put(bytes);
    }

    /** Writes an option reply header for the current option; the caller appends {@code length} bytes. */
    private void reply(ByteBuffer out, OptionReply type, int length) {
        out.putLong(NbdProtocol.OPTION_REPLY_MAGIC).putInt(option).putInt(type.code()).putInt(length);
    }

    private static byte[] utf8(String value) {
        return value.getBytes(StandardCharsets.UTF_8);
    }

    private NbdProtocolException fail(String message) {
        state = State.CLOSED;
        return new NbdProtocolException("handshake: " + message);
    }

    /** A malformed option: answered with NBD_REP_ERR_INVALID, after which negotiation goes on. */
    private static final class InvalidOption extends Exception {
        private static final long serialVersionUID = 1L;

        InvalidOption(String message) {
            super(message, null, false, false);
        }
    }
}
