package org.pcache.nbd;

import static org.pcache.nbd.NbdProtocol.OPTION_HEADER_LENGTH;
import static org.pcache.nbd.NbdProtocol.OPTION_REPLY_HEADER_LENGTH;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * The client side of fixed newstyle negotiation as a pure state machine: the server's bytes go in, the
 * client's options come out. It asks for structured replies, then (when they were granted) for the
 * {@code base:allocation} metadata context with NBD_OPT_SET_META_CONTEXT, then selects the export with NBD_OPT_GO
 * (requesting NBD_INFO_BLOCK_SIZE), falling back to NBD_OPT_EXPORT_NAME for a server without NBD_OPT_GO. With TLS
 * it first sends NBD_OPT_STARTTLS, and everything after the server's ACK goes over TLS; a server that refuses TLS
 * ends the handshake (no fallback to plain text, which would let anyone on the path downgrade the session).
 *
 * <p>Limits on what the server may send: an option reply of more than {@link #MAX_REPLY_LENGTH} bytes is a
 * protocol error.
 *
 * <p>Threading: owned by the thread that connects.
 */
final class ClientHandshake {
    /*
     * Implementation notes.
     *
     *   GREETING -> STRUCTURED_REPLY -> META_CONTEXT -> GO -----------> TRANSMISSION
     *       |             ^       \---------------------/   \-> EXPORT_NAME -/
     *       \-> STARTTLS_REPLY -> TLS --tlsStarted()
     *
     * META_CONTEXT is skipped without structured replies (block status needs them); a refused context only means
     * the client never sends NBD_CMD_BLOCK_STATUS.
     *
     * Each state names the server message being waited for. A reply is only parsed once all of it is in the
     * input buffer; MAX_REPLY_LENGTH bounds that buffer.
     */

    /** TLS: STARTTLS was acknowledged; the caller runs the TLS handshake, then calls {@link #tlsStarted}. */
    enum State { GREETING, STARTTLS_REPLY, TLS, STRUCTURED_REPLY, META_CONTEXT, GO, EXPORT_NAME, TRANSMISSION }

    static final int MAX_REPLY_LENGTH = 16 * 1024;
    /** Bytes the caller's input buffer must be able to hold. */
    static final int MIN_INPUT_CAPACITY = OPTION_REPLY_HEADER_LENGTH + MAX_REPLY_LENGTH;
    /**
     * Output space one decode() call can need: the client flags and two options, the longer of NBD_OPT_GO and
     * NBD_OPT_SET_META_CONTEXT with the longest name.
     */
    static final int MAX_OUTPUT_BYTES = NbdProtocol.CLIENT_FLAGS_LENGTH + 2 * OPTION_HEADER_LENGTH
            + 3 * Integer.BYTES + NbdProtocol.MAX_STRING_LENGTH + NbdProtocol.BASE_ALLOCATION.length();
    private static final byte[] BASE_ALLOCATION = NbdProtocol.BASE_ALLOCATION.getBytes(StandardCharsets.UTF_8);

    private final String exportName;
    private final byte[] exportNameBytes;
    private final boolean tls;
    private State state = State.GREETING;
    private boolean noZeroes;
    private boolean structuredReplies;
    private long size = -1;
    /** The server's id for base:allocation, or -1 when it was not negotiated. */
    private long baseAllocationId = -1;
    private int transmissionFlags;
    private int minimumBlockSize = 1;
    private long maximumBlockSize = NbdProtocol.MAX_PAYLOAD_LENGTH;
    /** Option and type fields of the reply nextReply() returned last. */
    private int replyOption;
    private int replyType;

    ClientHandshake(String exportName) {
        this(exportName, false);
    }

    ClientHandshake(String exportName, boolean tls) {
        this.tls = tls;
        this.exportName = exportName;
        this.exportNameBytes = exportName.getBytes(StandardCharsets.UTF_8);
        if (exportNameBytes.length > NbdProtocol.MAX_STRING_LENGTH) {
            throw new IllegalArgumentException("export name of " + exportNameBytes.length + " bytes (expected <= "
                    + NbdProtocol.MAX_STRING_LENGTH + ")");
        }
    }

    State state() {
        return state;
    }

    boolean structuredReplies() {
        return structuredReplies;
    }

    long size() {
        return size;
    }

    /** The context id of base:allocation in BLOCK_STATUS replies, or -1 when the server did not agree to it. */
    long baseAllocationId() {
        return baseAllocationId;
    }

    int transmissionFlags() {
        return transmissionFlags;
    }

    /** The advertised minimum block size, 1 when the server sent none (the spec's default). */
    int minimumBlockSize() {
        return minimumBlockSize;
    }

    /** The advertised maximum request length, capped at {@link NbdProtocol#MAX_PAYLOAD_LENGTH}. */
    int maximumBlockSize() {
        return (int) Math.min(maximumBlockSize, NbdProtocol.MAX_PAYLOAD_LENGTH);
    }

    /**
     * Consumes complete server messages from {@code in}, appending the client's answers to {@code out} (which
     * must have {@link #MAX_OUTPUT_BYTES} free), until more bytes are needed or the handshake is done.
     */
    State decode(ByteBuffer in, ByteBuffer out) throws NbdProtocolException, NbdHandshakeException {
        while (true) {
            switch (state) {
                case GREETING -> {
                    if (in.remaining() < NbdProtocol.GREETING_LENGTH) {
                        return state;
                    }
                    decodeGreeting(in, out);
                }
                case STARTTLS_REPLY, STRUCTURED_REPLY, META_CONTEXT, GO -> {
                    ByteBuffer payload = nextReply(in);
                    if (payload == null) {
                        return state;
                    }
                    decodeReply(payload, out);
                }
                case EXPORT_NAME -> {
                    int length = NbdProtocol.EXPORT_NAME_REPLY_LENGTH + (noZeroes ? 0 : NbdProtocol.EXPORT_NAME_ZEROES);
                    if (in.remaining() < length) {
                        return state;
                    }
                    size = in.getLong();
                    transmissionFlags = Short.toUnsignedInt(in.getShort());
                    in.position(in.position() + length - NbdProtocol.EXPORT_NAME_REPLY_LENGTH);
                    finish();
                }
                case TLS, TRANSMISSION -> {
                    return state;
                }
            }
        }
    }

    private void decodeGreeting(ByteBuffer in, ByteBuffer out) throws NbdProtocolException {
        long magic = in.getLong();
        long newstyle = in.getLong();
        int flags = Short.toUnsignedInt(in.getShort());
        if (magic != NbdProtocol.INIT_PASSWD || newstyle != NbdProtocol.IHAVEOPT) {
            throw new NbdProtocolException("greeting magic 0x" + Long.toHexString(magic) + " 0x"
                    + Long.toHexString(newstyle) + " (expected NBDMAGIC IHAVEOPT; oldstyle servers are not supported)");
        }
        if ((flags & NbdProtocol.FLAG_FIXED_NEWSTYLE) == 0) {
            throw new NbdProtocolException("server does not offer fixed newstyle negotiation (flags 0x"
                    + Integer.toHexString(flags) + ")");
        }
        noZeroes = (flags & NbdProtocol.FLAG_NO_ZEROES) != 0;
        out.putInt(NbdProtocol.FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NbdProtocol.FLAG_C_NO_ZEROES : 0));
        if (tls) {
            option(out, NbdOption.STARTTLS, 0);
            state = State.STARTTLS_REPLY;
        } else {
            option(out, NbdOption.STRUCTURED_REPLY, 0);
            state = State.STRUCTURED_REPLY;
        }
    }

    /** The TLS handshake after the STARTTLS ACK succeeded: negotiation starts over, inside TLS. */
    void tlsStarted(ByteBuffer out) {
        if (state != State.TLS) {
            throw new IllegalStateException("no STARTTLS acknowledged: " + state);
        }
        option(out, NbdOption.STRUCTURED_REPLY, 0);
        state = State.STRUCTURED_REPLY;
    }

    /** The payload of the next complete option reply, with its header fields stashed, or null. */
    private ByteBuffer nextReply(ByteBuffer in) throws NbdProtocolException {
        if (in.remaining() < OPTION_REPLY_HEADER_LENGTH) {
            return null;
        }
        int start = in.position();
        long magic = in.getLong(start);
        if (magic != NbdProtocol.OPTION_REPLY_MAGIC) {
            throw new NbdProtocolException("option reply magic 0x" + Long.toHexString(magic) + " (expected 0x"
                    + Long.toHexString(NbdProtocol.OPTION_REPLY_MAGIC) + ")");
        }
        long length = Integer.toUnsignedLong(in.getInt(start + 16));
        if (length > MAX_REPLY_LENGTH) {
            throw new NbdProtocolException("option reply of " + length + " bytes (expected <= " + MAX_REPLY_LENGTH
                    + ")");
        }
        if (in.remaining() < OPTION_REPLY_HEADER_LENGTH + length) {
            return null;
        }
        replyOption = in.getInt(start + 8);
        replyType = in.getInt(start + 12);
        ByteBuffer payload = in.slice(start + OPTION_REPLY_HEADER_LENGTH, (int) length);
        in.position(start + OPTION_REPLY_HEADER_LENGTH + (int) length);
        return payload;
    }

    private void decodeReply(ByteBuffer payload, ByteBuffer out) throws NbdProtocolException, NbdHandshakeException {
        NbdOption expected = switch (state) {
            case STARTTLS_REPLY -> NbdOption.STARTTLS;
            case STRUCTURED_REPLY -> NbdOption.STRUCTURED_REPLY;
            case META_CONTEXT -> NbdOption.SET_META_CONTEXT;
            default -> NbdOption.GO;
        };
        if (replyOption != expected.code()) {
            throw new NbdProtocolException("reply to option " + replyOption + " (expected " + expected + ")");
        }
        OptionReply type = OptionReply.tryDecode(replyType);
        if (type == null && replyType >= 0) {
            throw new NbdProtocolException(expected + ": unknown reply type " + replyType);
        }
        if (state == State.STARTTLS_REPLY) {
            if (type != OptionReply.ACK) {
                String message = StandardCharsets.UTF_8.decode(payload).toString();
                throw new NbdHandshakeException("server refused TLS (NBD_OPT_STARTTLS): "
                        + (type == null ? "reply 0x" + Integer.toHexString(replyType) : type)
                        + (message.isEmpty() ? "" : ": " + message));
            }
            state = State.TLS;
            return;
        }
        if (state == State.STRUCTURED_REPLY) {
            if (type != OptionReply.ACK && (type == null || !type.isError())) {
                throw new NbdProtocolException("NBD_OPT_STRUCTURED_REPLY: unexpected reply " + type);
            }
            structuredReplies = type == OptionReply.ACK;
            if (structuredReplies) {
                setMetaContext(out);
                state = State.META_CONTEXT;
            } else {
                go(out);
                state = State.GO;
            }
            return;
        }
        if (state == State.META_CONTEXT) {
            decodeMetaContextReply(type, payload, out);
            return;
        }
        if (type == null || type.isError()) {
            goFailed(type, payload, out);
        } else if (type == OptionReply.INFO) {
            decodeInfo(payload);
        } else if (type == OptionReply.ACK) {
            if (size < 0) {
                throw new NbdProtocolException("NBD_OPT_GO acknowledged without NBD_INFO_EXPORT");
            }
            finish();
        } else {
            throw new NbdProtocolException("NBD_OPT_GO: unexpected reply " + type);
        }
    }

    private void goFailed(OptionReply type, ByteBuffer payload, ByteBuffer out) throws NbdHandshakeException {
        if (type == OptionReply.ERR_UNSUP) {
            // proto.md: clients SHOULD fall back to NBD_OPT_EXPORT_NAME when NBD_OPT_GO is unknown.
            option(out, NbdOption.EXPORT_NAME, exportNameBytes.length);
            out.put(exportNameBytes);
            state = State.EXPORT_NAME;
            return;
        }
        String message = StandardCharsets.UTF_8.decode(payload).toString();
        throw new NbdHandshakeException("server refused export '" + exportName + "': "
                + (type == null ? "error 0x" + Integer.toHexString(replyType) : type)
                + (message.isEmpty() ? "" : ": " + message));
    }

    private void decodeInfo(ByteBuffer payload) throws NbdProtocolException {
        if (payload.remaining() < Short.BYTES) {
            throw new NbdProtocolException("NBD_REP_INFO of " + payload.remaining() + " bytes");
        }
        int type = Short.toUnsignedInt(payload.getShort());
        switch (type) {
            case NbdProtocol.INFO_EXPORT -> {
                expectLength(payload, Long.BYTES + Short.BYTES, "NBD_INFO_EXPORT");
                size = payload.getLong();
                transmissionFlags = Short.toUnsignedInt(payload.getShort());
                if (size < 0) {
                    throw new NbdProtocolException("export size " + Long.toUnsignedString(size) + " too large");
                }
            }
            case NbdProtocol.INFO_BLOCK_SIZE -> {
                expectLength(payload, 3 * Integer.BYTES, "NBD_INFO_BLOCK_SIZE");
                int minimum = payload.getInt();
                int preferred = payload.getInt();
                long maximum = Integer.toUnsignedLong(payload.getInt());
                if (minimum <= 0 || Integer.bitCount(minimum) != 1 || minimum > 65536
                        || preferred <= 0 || Integer.bitCount(preferred) != 1 || maximum < minimum) {
                    throw new NbdProtocolException("block sizes min=" + minimum + " preferred=" + preferred
                            + " max=" + maximum + " break proto.md's constraints");
                }
                minimumBlockSize = minimum;
                maximumBlockSize = maximum - maximum % minimum;
            }
            default -> {
                // proto.md: the client MUST ignore information types it does not understand.
            }
        }
    }

    private static void expectLength(ByteBuffer payload, int length, String what) throws NbdProtocolException {
        if (payload.remaining() != length) {
            throw new NbdProtocolException(what + " with " + payload.remaining() + " payload bytes (expected "
                    + length + ")");
        }
    }

    /** A context the server selected, then ACK (or an error: no context); GO follows either way. */
    private void decodeMetaContextReply(OptionReply type, ByteBuffer payload, ByteBuffer out)
            throws NbdProtocolException {
        if (type == OptionReply.META_CONTEXT) {
            if (payload.remaining() < Integer.BYTES) {
                throw new NbdProtocolException("NBD_REP_META_CONTEXT of " + payload.remaining() + " bytes");
            }
            long id = Integer.toUnsignedLong(payload.getInt());
            String name = StandardCharsets.UTF_8.decode(payload).toString();
            if (name.equals(NbdProtocol.BASE_ALLOCATION)) {
                baseAllocationId = id;
            }
        } else if (type == OptionReply.ACK || type == null || type.isError()) {
            if (type != OptionReply.ACK) {
                baseAllocationId = -1;
            }
            go(out);
            state = State.GO;
        } else {
            throw new NbdProtocolException("NBD_OPT_SET_META_CONTEXT: unexpected reply " + type);
        }
    }

    private void setMetaContext(ByteBuffer out) {
        option(out, NbdOption.SET_META_CONTEXT, 3 * Integer.BYTES + exportNameBytes.length + BASE_ALLOCATION.length);
        out.putInt(exportNameBytes.length).put(exportNameBytes).putInt(1).putInt(BASE_ALLOCATION.length)
                .put(BASE_ALLOCATION);
    }

    private void go(ByteBuffer out) {
        option(out, NbdOption.GO, Integer.BYTES + exportNameBytes.length + 2 * Short.BYTES);
        out.putInt(exportNameBytes.length).put(exportNameBytes)
                .putShort((short) 1).putShort((short) NbdProtocol.INFO_BLOCK_SIZE);
    }

    private void finish() throws NbdProtocolException {
        if ((transmissionFlags & NbdProtocol.FLAG_HAS_FLAGS) == 0) {
            throw new NbdProtocolException("transmission flags 0x" + Integer.toHexString(transmissionFlags)
                    + " lack NBD_FLAG_HAS_FLAGS");
        }
        state = State.TRANSMISSION;
    }

    private static void option(ByteBuffer out, NbdOption option, int length) {
        out.putLong(NbdProtocol.IHAVEOPT).putInt(option.code()).putInt(length);
    }
}
