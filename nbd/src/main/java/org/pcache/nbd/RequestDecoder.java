package org.pcache.nbd;

import java.nio.ByteBuffer;

/**
 * Splits the client's transmission-phase byte stream into request headers and write payloads; a pure codec
 * that reads from whatever buffer it is given.
 *
 * <p>Limits: a WRITE whose payload is longer than {@link #MAX_DISCARD_LENGTH} is a framing error, because
 * the server would refuse it and could only skip it byte by byte; anything shorter can be rejected with an
 * error reply and drained ({@link #discardPayload}), so framing survives. A bad magic is a framing error.
 * Framing errors are terminal: the decoder moves to {@link State#FAILED} and throws.
 *
 * <p>Threading: owned by one connection's reader thread.
 */
final class RequestDecoder {
    /*
     * Implementation notes.
     *
     *   HEADER --(WRITE header)--> PAYLOAD --(payloadInto, all bytes copied)--> HEADER
     *                                  \--(discardPayload)--> DISCARD --(all bytes skipped)--> HEADER
     *   HEADER --(bad magic, oversized payload)--> FAILED
     *
     * After a WRITE header the caller must say where the payload goes (payloadInto) or that it is to be
     * dropped (discardPayload) before feeding more bytes; that is the validate-then-execute split of nbdkit's
     * protocol.c: the decoder frames, the connection decides.
     */

    enum State { HEADER, PAYLOAD, DISCARD, FAILED }

    /** Longest WRITE payload drained after a rejection; twice the largest the server accepts (as nbdkit). */
    static final long MAX_DISCARD_LENGTH = 2L * NbdProtocol.MAX_REQUEST_LENGTH;

    private State state = State.HEADER;
    /** Where the current payload goes; null while the caller has not decided. */
    private ByteBuffer payload;
    private long discardRemaining;

    State state() {
        return state;
    }

    /**
     * Decodes one request header if {@link NbdProtocol#REQUEST_HEADER_LENGTH} bytes are available, else
     * returns null and consumes nothing. After a WRITE header the state is {@link State#PAYLOAD}.
     */
    NbdRequest decodeHeader(ByteBuffer in) throws NbdProtocolException {
        if (state != State.HEADER) {
            throw new IllegalStateException("decodeHeader in state " + state);
        }
        if (in.remaining() < NbdProtocol.REQUEST_HEADER_LENGTH) {
            return null;
        }
        int magic = in.getInt();
        if (magic != NbdProtocol.REQUEST_MAGIC) {
            state = State.FAILED;
            throw new NbdProtocolException("request magic 0x" + Integer.toHexString(magic) + " (expected 0x"
                    + Integer.toHexString(NbdProtocol.REQUEST_MAGIC) + ")");
        }
        int flags = Short.toUnsignedInt(in.getShort());
        int type = Short.toUnsignedInt(in.getShort());
        long handle = in.getLong();
        long offset = in.getLong();
        long length = Integer.toUnsignedLong(in.getInt());
        NbdCommand command = NbdCommand.tryDecode(type);
        if (command == NbdCommand.WRITE) {
            if (length > MAX_DISCARD_LENGTH) {
                state = State.FAILED;
                throw new NbdProtocolException("write payload of " + length + " bytes (expected <= "
                        + MAX_DISCARD_LENGTH + ")");
            }
            if (length > 0) {
                state = State.PAYLOAD;
                payload = null;
            }
        }
        return new NbdRequest(command, type, flags, handle, offset, length);
    }

    /** The payload of the WRITE just decoded goes to {@code dst}, whose remaining() is the payload length. */
    void payloadInto(ByteBuffer dst) {
        requirePayloadDecision();
        payload = dst;
    }

    /** The payload of the WRITE just decoded, {@code length} bytes, is read and dropped. */
    void discardPayload(long length) {
        requirePayloadDecision();
        state = State.DISCARD;
        discardRemaining = length;
    }

    /**
     * Moves payload bytes from {@code in} to the destination (or drops them); returns true once the whole
     * payload is through and the decoder is back at {@link State#HEADER}.
     */
    boolean decodePayload(ByteBuffer in) {
        if (state == State.DISCARD) {
            int skip = (int) Math.min(in.remaining(), discardRemaining);
            in.position(in.position() + skip);
            discardRemaining -= skip;
            return finishPayloadIf(discardRemaining == 0);
        }
        if (state != State.PAYLOAD || payload == null) {
            throw new IllegalStateException("decodePayload in state " + state + " without a destination");
        }
        int copy = Math.min(in.remaining(), payload.remaining());
        payload.put(payload.position(), in, in.position(), copy);
        payload.position(payload.position() + copy);
        in.position(in.position() + copy);
        return finishPayloadIf(!payload.hasRemaining());
    }

    /**
     * The buffer still waiting for payload bytes, so the caller may read from the socket straight into it;
     * null when the payload is being discarded.
     */
    ByteBuffer payloadDestination() {
        return state == State.PAYLOAD ? payload : null;
    }

    private boolean finishPayloadIf(boolean complete) {
        if (complete) {
            state = State.HEADER;
            payload = null;
        }
        return complete;
    }

    private void requirePayloadDecision() {
        if (state != State.PAYLOAD || payload != null) {
            throw new IllegalStateException("no write payload awaiting a destination (state " + state + ")");
        }
    }
}
