package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;

/**
 * Coverage-guided fuzzing of what an NBD server decodes from a client: the fixed newstyle handshake
 * ({@link ServerHandshake}), then transmission requests ({@link RequestDecoder}, {@link RequestValidator}), driven the
 * way {@link NbdConnection} drives them (one input buffer, compacted between reads, write payloads into their own
 * buffer or drained after a refusal). Whatever the bytes, the server ends with an {@link NbdProtocolException} in a
 * terminal state, a clean end of stream, or a DISC, throws nothing else, and every request it lets run lies inside
 * the export.
 *
 * <p>Input: byte 0 sets the largest read the transport returns (1 + 64 * byte); the rest is the client's stream.
 */
class ServerProtocolFuzzTest {

    private static final int INPUT_CAPACITY = 256 * 1024;
    private static final long EXPORT_SIZE = 1 << 20;
    private static final int LARGEST_KEPT_PAYLOAD = 1 << 20;
    private static final MemoryExport EXPORT = new MemoryExport("disk", EXPORT_SIZE);

    @AfterAll
    static void closeExport() {
        EXPORT.close();
    }

    @FuzzTest(maxDuration = "30s")
    void clientBytesAreServedOrEndInAProtocolError(byte[] input) {
        if (input.length < 1) {
            return;
        }
        Session session = new Session(new ScriptedTransport(Arrays.copyOfRange(input, 1, input.length),
                1 + 64 * Byte.toUnsignedInt(input[0])));
        try {
            if (session.negotiate()) {
                session.transmit();
            }
        } catch (NbdProtocolException e) {
            assertThat(e.getMessage()).isNotBlank();
            assertThat(session.handshake.state() == ServerHandshake.State.CLOSED
                    || session.decoder.state() == RequestDecoder.State.FAILED || session.endedInside)
                    .as("terminal state after %s", e.getMessage()).isTrue();
        }
    }

    /** One client connection's reader side, as NbdConnection runs it. */
    private static final class Session {
        private final ScriptedTransport transport;
        private final ByteBuffer in = ByteBuffer.allocate(INPUT_CAPACITY).flip();
        private final ServerHandshake handshake = new ServerHandshake(EXPORT);
        private final RequestDecoder decoder = new RequestDecoder();
        private boolean endedInside;

        Session(ScriptedTransport transport) {
            this.transport = transport;
        }

        boolean negotiate() throws NbdProtocolException {
            ByteBuffer out = ByteBuffer.allocate(32 * 1024);
            while (true) {
                int consumed = in.position();
                ServerHandshake.State state = handshake.decode(in, out);
                assertThat(out.position()).as("reply bytes").isLessThanOrEqualTo(ServerHandshake.MAX_REPLY_BYTES);
                out.clear();
                switch (state) {
                    case TRANSMISSION -> {
                        return true;
                    }
                    case CLOSED -> {
                        return false;
                    }
                    case STARTTLS -> throw new AssertionError("STARTTLS accepted on a server without TLS");
                    default -> {
                        if (in.position() == consumed && !fill()) {
                            return false;
                        }
                    }
                }
            }
        }

        void transmit() throws NbdProtocolException {
            TransmissionSettings settings = handshake.settings();
            RequestValidator validator = new RequestValidator(settings, EXPORT.size(),
                    EXPORT.capabilities().contains(NbdExport.Capability.FAST_ZERO));
            while (true) {
                switch (decoder.state()) {
                    case HEADER -> {
                        NbdRequest request = decoder.decodeHeader(in);
                        if (request == null) {
                            if (!fill()) {
                                endedInside = in.hasRemaining();
                                if (endedInside) {
                                    throw new NbdProtocolException("connection closed inside a request header");
                                }
                                return;
                            }
                        } else if (request.command() == NbdCommand.DISC) {
                            return;
                        } else {
                            dispatch(request, validator.validate(request));
                        }
                    }
                    case PAYLOAD -> {
                        if (!decoder.decodePayload(in) && transport.read(decoder.payloadDestination()) < 0) {
                            endedInside = true;
                            throw new NbdProtocolException("connection closed inside a write payload");
                        }
                    }
                    case DISCARD -> {
                        if (!decoder.decodePayload(in) && !fill()) {
                            endedInside = true;
                            throw new NbdProtocolException("connection closed inside a write payload");
                        }
                    }
                    case FAILED -> throw new AssertionError("decoder failed without an exception");
                }
            }
        }

        private void dispatch(NbdRequest request, RequestValidator.Rejection rejection) {
            boolean payload = request.command() == NbdCommand.WRITE && request.length() > 0;
            if (rejection != null) {
                assertThat(rejection.message()).isNotBlank();
                if (payload) {
                    decoder.discardPayload(request.length());
                }
                return;
            }
            NbdCommand command = request.command();
            if (command != NbdCommand.FLUSH) {
                assertThat(request.offset()).as("%s offset", request).isNotNegative();
                assertThat(request.length()).as("%s length", request).isLessThanOrEqualTo(EXPORT_SIZE);
                assertThat(request.offset() + request.length()).as("%s end", request).isLessThanOrEqualTo(EXPORT_SIZE);
            }
            if (payload) {
                if (request.length() <= LARGEST_KEPT_PAYLOAD) {
                    decoder.payloadInto(ByteBuffer.allocate((int) request.length()));
                } else {
                    decoder.discardPayload(request.length());
                }
            }
        }

        private boolean fill() {
            in.compact();
            try {
                return transport.read(in) >= 0;
            } finally {
                in.flip();
            }
        }
    }
}
