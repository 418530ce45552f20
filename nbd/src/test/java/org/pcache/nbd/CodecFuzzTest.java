package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Seeded random bytes into every codec: the only exceptions allowed are the typed protocol ones, and no
 * decoder may ask for more input than its stated capacity. Inputs are half structured (valid magics and
 * headers with random fields) so the fuzzing reaches past the first check.
 */
class CodecFuzzTest {

    private static final int ROUNDS = 3000;

    private final MemoryExport export = new MemoryExport("disk", 1 << 20);

    @AfterEach
    void closeExport() {
        export.close();
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 0xdecafL})
    void serverHandshakeThrowsOnlyProtocolExceptions(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int round = 0; round < ROUNDS; round++) {
            ServerHandshake handshake = new ServerHandshake(export);
            ByteBuffer in = ByteBuffer.allocate(ServerHandshake.MIN_INPUT_CAPACITY);
            in.putInt(random.nextInt(4) == 0 ? random.nextInt() : 3);
            while (in.remaining() > 64 && random.nextInt(8) != 0) {
                putOption(random, in);
            }
            in.flip();
            ByteBuffer out = ByteBuffer.allocate(ServerHandshake.MAX_REPLY_BYTES);
            try {
                int before;
                do {
                    before = in.position();
                    out.clear();
                    handshake.decode(in, out);
                } while (in.position() != before);
            } catch (NbdProtocolException expected) {
                assertThat(handshake.state()).as("seed %d round %d", seed, round)
                        .isEqualTo(ServerHandshake.State.CLOSED);
            }
        }
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 0xdecafL})
    void requestDecoderThrowsOnlyProtocolExceptions(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int round = 0; round < ROUNDS; round++) {
            RequestDecoder decoder = new RequestDecoder();
            ByteBuffer in = ByteBuffer.allocate(8192);
            while (in.remaining() > NbdProtocol.REQUEST_HEADER_LENGTH && random.nextInt(6) != 0) {
                in.putInt(random.nextInt(10) == 0 ? random.nextInt() : NbdProtocol.REQUEST_MAGIC)
                        .putShort((short) random.nextInt()).putShort((short) random.nextInt(10))
                        .putLong(random.nextLong()).putLong(random.nextLong())
                        .putInt(random.nextBoolean() ? random.nextInt(2048) : random.nextInt());
                byte[] filler = new byte[random.nextInt(Math.min(1024, in.remaining()))];
                random.nextBytes(filler);
                in.put(filler);
            }
            in.flip();
            try {
                while (in.hasRemaining()) {
                    if (decoder.state() == RequestDecoder.State.HEADER) {
                        NbdRequest request = decoder.decodeHeader(in);
                        if (request == null) {
                            break;
                        }
                        if (decoder.state() == RequestDecoder.State.PAYLOAD) {
                            if (request.length() <= 4096) {
                                decoder.payloadInto(ByteBuffer.allocate((int) request.length()));
                            } else {
                                decoder.discardPayload(request.length());
                            }
                        }
                    } else {
                        decoder.decodePayload(in);
                    }
                }
            } catch (NbdProtocolException expected) {
                assertThat(decoder.state()).as("seed %d round %d", seed, round)
                        .isEqualTo(RequestDecoder.State.FAILED);
            }
        }
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 0xdecafL})
    void clientHandshakeThrowsOnlyProtocolOrHandshakeExceptions(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int round = 0; round < ROUNDS; round++) {
            ClientHandshake handshake = new ClientHandshake("disk");
            ByteBuffer in = ByteBuffer.allocate(ClientHandshake.MIN_INPUT_CAPACITY);
            ServerHandshake.encodeGreeting(in);
            if (random.nextInt(4) == 0) {
                in.put(random.nextInt(in.position()), (byte) random.nextInt());
            }
            while (in.remaining() > 64 && random.nextInt(6) != 0) {
                int length = random.nextBoolean() ? random.nextInt(Math.min(64, in.remaining() - 20))
                        : random.nextInt();
                in.putLong(random.nextInt(10) == 0 ? random.nextLong() : NbdProtocol.OPTION_REPLY_MAGIC)
                        .putInt(random.nextBoolean() ? NbdOption.GO.code() : NbdOption.STRUCTURED_REPLY.code())
                        .putInt(random.nextBoolean() ? random.nextInt(1, 5) : random.nextInt())
                        .putInt(length);
                byte[] payload = new byte[Math.max(0, Math.min(length, in.remaining()))];
                random.nextBytes(payload);
                in.put(payload);
            }
            in.flip();
            try {
                handshake.decode(in, ByteBuffer.allocate(8 * ClientHandshake.MAX_OUTPUT_BYTES));
            } catch (NbdProtocolException | NbdHandshakeException expected) {
                assertThat(expected.getMessage()).as("seed %d round %d", seed, round).isNotEmpty();
            }
        }
    }

    @ParameterizedTest(name = "seed {0}")
    @ValueSource(longs = {1, 2, 3, 0xdecafL})
    void replyDecoderThrowsOnlyProtocolExceptions(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        for (int round = 0; round < ROUNDS * 10; round++) {
            byte[] bytes = new byte[ReplyDecoder.MAX_ERROR_CHUNK_LENGTH + 16];
            random.nextBytes(bytes);
            ByteBuffer in = ByteBuffer.wrap(bytes);
            in.putShort(2, (short) (random.nextBoolean() ? random.nextInt(6) : 0x8000 | random.nextInt(4)));
            in.putInt(12, random.nextBoolean() ? random.nextInt(64) : random.nextInt());
            try {
                ReplyDecoder.Chunk chunk = ReplyDecoder.decodeChunkHeader(in);
                if (chunk.isError()) {
                    ReplyDecoder.decodeError(chunk, in.slice(in.position(), (int) chunk.length()));
                } else {
                    ReplyDecoder.checkChunkLength(chunk, random.nextInt(1 << 20));
                }
            } catch (NbdProtocolException expected) {
                assertThat(expected.getMessage()).as("seed %d round %d", seed, round).isNotEmpty();
            }
        }
    }

    private static void putOption(SplittableRandom random, ByteBuffer in) {
        int code = random.nextInt(13);
        byte[] data = new byte[random.nextInt(Math.min(200, in.remaining() - NbdProtocol.OPTION_HEADER_LENGTH))];
        random.nextBytes(data);
        if (data.length >= 4 && random.nextBoolean()) {
            ByteBuffer.wrap(data).putInt(0, random.nextInt(data.length));
        }
        int length = random.nextInt(10) == 0 ? random.nextInt() : data.length;
        in.putLong(random.nextInt(20) == 0 ? random.nextLong() : NbdProtocol.IHAVEOPT).putInt(code).putInt(length)
                .put(data);
    }
}
