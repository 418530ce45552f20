package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Hostile input over raw sockets. After each case a well-behaved connection opened before it must still
 * work, the server must still accept, and rejected writes must have written nothing.
 */
class MalformedInputTest {

    private static final long SIZE = 64L << 20;

    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private final Arena arena = Arena.ofShared();
    private final List<SocketChannel> raw = new ArrayList<>();
    private NbdServer server;
    private NbdClient bystander;

    @BeforeEach
    void start() throws Exception {
        server = new NbdServer(memory, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
        bystander = NbdClient.connect(NbdUri.of(server.boundAddresses().get(0), ""));
    }

    @AfterEach
    void stop() throws Exception {
        for (SocketChannel channel : raw) {
            channel.close();
        }
        bystander.close();
        server.stop();
        arena.close();
        memory.close();
    }

    @Test
    void badRequestMagicClosesOnlyThatConnection() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(ByteBuffer.wrap(new byte[NbdProtocol.REQUEST_HEADER_LENGTH]));
        assertClosedByServer(channel);
        assertServerAndBystanderWork();
    }

    @Test
    void unknownCommandGetsEinvalAndTheConnectionGoesOn() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(RequestDecoderTest.request(0, 77, 1, 0, 0));
        assertThat(simpleReply(channel, 1)).isEqualTo(NbdError.EINVAL.code());
        channel.write(RequestDecoderTest.request(0, NbdCommand.FLUSH.type(), 2, 0, 0));
        assertThat(simpleReply(channel, 2)).isZero();
        assertServerAndBystanderWork();
    }

    @Test
    void rejectedWritesAreDrainedAndWriteNothing() throws Exception {
        SocketChannel channel = negotiated();
        byte[] payload = new byte[4096];
        java.util.Arrays.fill(payload, (byte) 0xaa);
        sendWrite(channel, 1, SIZE, payload);
        sendWrite(channel, 2, SIZE - 100, new byte[512]);
        sendWrite(channel, 3, SIZE - 512, payload);
        sendWrite(channel, 4, 0, new byte[0]);
        assertThat(simpleReply(channel, 1)).isEqualTo(NbdError.ENOSPC.code());
        assertThat(simpleReply(channel, 2)).isEqualTo(NbdError.ENOSPC.code());
        assertThat(simpleReply(channel, 3)).isEqualTo(NbdError.ENOSPC.code());
        assertThat(simpleReply(channel, 4)).isEqualTo(NbdError.EINVAL.code());
        channel.write(RequestDecoderTest.request(0, NbdCommand.FLUSH.type(), 5, 0, 0));
        assertThat(simpleReply(channel, 5)).as("framing survived the drained payloads").isZero();
        assertThat(memory.contents().mismatch(arena.allocate(SIZE))).as("nothing written").isEqualTo(-1);
        assertServerAndBystanderWork();
    }

    @Test
    void aRefusedWriteIsAnsweredOnlyOnceItsPayloadHasArrived() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(RequestDecoderTest.request(0, NbdCommand.WRITE.type(), 1, SIZE, 4096));
        channel.write(ByteBuffer.wrap(new byte[2048]));
        channel.configureBlocking(false);
        try (Selector selector = Selector.open()) {
            channel.register(selector, SelectionKey.OP_READ);
            assertThat(selector.select(300)).as("a reply before the payload ended").isZero();
        }
        channel.configureBlocking(true);
        channel.write(ByteBuffer.wrap(new byte[2048]));
        assertThat(simpleReply(channel, 1)).isEqualTo(NbdError.ENOSPC.code());
        assertServerAndBystanderWork();
    }

    @Test
    void writeOverTheMaximumLengthIsRefusedAndDrained() throws Exception {
        SocketChannel channel = negotiated();
        sendWrite(channel, 1, 0, new byte[NbdProtocol.MAX_REQUEST_LENGTH + 1]);
        assertThat(simpleReply(channel, 1)).isEqualTo(NbdError.EINVAL.code());
        assertThat(memory.contents().mismatch(arena.allocate(SIZE))).isEqualTo(-1);
        assertServerAndBystanderWork();
    }

    @Test
    void hugeClaimedWriteLengthDisconnectsWithoutAllocating() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(RequestDecoderTest.request(0, NbdCommand.WRITE.type(), 1, 0, 0xffff_fe00L));
        assertClosedByServer(channel);
        assertServerAndBystanderWork();
    }

    @Test
    void truncatedPayloadThenHangUpWritesNothing() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(RequestDecoderTest.request(0, NbdCommand.WRITE.type(), 1, 0, 4096));
        channel.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        channel.close();
        assertServerAndBystanderWork();
        assertThat(memory.contents().mismatch(arena.allocate(SIZE))).isEqualTo(-1);
    }

    @Test
    void readPastTheEndAndBadFlagsGetErrorsNotDisconnects() throws Exception {
        SocketChannel channel = negotiated();
        channel.write(RequestDecoderTest.request(0, NbdCommand.READ.type(), 1, SIZE - 512, 1024));
        channel.write(RequestDecoderTest.request(0x8000, NbdCommand.READ.type(), 2, 0, 512));
        channel.write(RequestDecoderTest.request(0, NbdCommand.READ.type(), 3, -4096L, 4096));
        channel.write(RequestDecoderTest.request(NbdProtocol.CMD_FLAG_DF, NbdCommand.READ.type(), 4, 0, 512));
        for (int handle = 1; handle <= 4; handle++) {
            assertThat(simpleReply(channel, handle)).isEqualTo(NbdError.EINVAL.code());
        }
        assertServerAndBystanderWork();
    }

    @Test
    void handshakeGarbageClosesOnlyThatConnection() throws Exception {
        SocketChannel channel = open();
        readFully(channel, NbdProtocol.GREETING_LENGTH);
        channel.write(ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes()));
        assertClosedByServer(channel);
        assertServerAndBystanderWork();
    }

    @Test
    void optionWithAHugeClaimedLengthIsSkippedNotBuffered() throws Exception {
        SocketChannel channel = open();
        readFully(channel, NbdProtocol.GREETING_LENGTH);
        ByteBuffer header = ByteBuffer.allocate(4 + NbdProtocol.OPTION_HEADER_LENGTH).putInt(3)
                .putLong(NbdProtocol.IHAVEOPT).putInt(NbdOption.GO.code()).putInt(-1).flip();
        channel.write(header);
        channel.write(ByteBuffer.allocate(1 << 20));
        channel.close();
        assertServerAndBystanderWork();
    }

    @Test
    void seededGarbageOnManyConnectionsLeavesTheServerServing() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = 0; i < 20; i++) {
            SocketChannel channel = random.nextBoolean() ? negotiated() : open();
            byte[] garbage = new byte[random.nextInt(1, 4096)];
            random.nextBytes(garbage);
            if (random.nextBoolean()) {
                ByteBuffer.wrap(garbage).putInt(0, NbdProtocol.REQUEST_MAGIC);
            }
            channel.write(ByteBuffer.wrap(garbage));
            channel.close();
        }
        assertServerAndBystanderWork();
        assertThat(server.boundAddresses()).as("seed " + seed).isNotEmpty();
    }

    private void assertServerAndBystanderWork() throws Exception {
        MemorySegment data = arena.allocate(4096).fill((byte) 0x5c);
        bystander.write(SIZE - 4096, data, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        MemorySegment back = arena.allocate(4096);
        bystander.read(SIZE - 4096, back).get(5, TimeUnit.SECONDS);
        assertThat(back.mismatch(data)).isEqualTo(-1);
        bystander.writeZeroes(SIZE - 4096, 4096, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        try (NbdClient fresh = NbdClient.connect(NbdUri.of(server.boundAddresses().get(0), ""))) {
            fresh.flush().get(5, TimeUnit.SECONDS);
        }
    }

    private SocketChannel open() throws IOException {
        SocketChannel channel = SocketChannel.open(server.boundAddresses().get(0));
        raw.add(channel);
        return channel;
    }

    /** A raw connection through NBD_OPT_EXPORT_NAME with no zeroes: simple replies only. */
    private SocketChannel negotiated() throws IOException {
        SocketChannel channel = open();
        readFully(channel, NbdProtocol.GREETING_LENGTH);
        channel.write(ByteBuffer.allocate(4 + NbdProtocol.OPTION_HEADER_LENGTH).putInt(3)
                .putLong(NbdProtocol.IHAVEOPT).putInt(NbdOption.EXPORT_NAME.code()).putInt(0).flip());
        readFully(channel, NbdProtocol.EXPORT_NAME_REPLY_LENGTH);
        return channel;
    }

    private static void sendWrite(SocketChannel channel, long handle, long offset, byte[] payload)
            throws IOException {
        channel.write(RequestDecoderTest.request(0, NbdCommand.WRITE.type(), handle, offset, payload.length));
        ByteBuffer data = ByteBuffer.wrap(payload);
        while (data.hasRemaining()) {
            channel.write(data);
        }
    }

    /** Reads one simple reply, checks its handle, returns its error field. */
    private static int simpleReply(SocketChannel channel, long handle) throws IOException {
        ByteBuffer reply = readFully(channel, NbdProtocol.SIMPLE_REPLY_LENGTH);
        assertThat(reply.getInt()).isEqualTo(NbdProtocol.SIMPLE_REPLY_MAGIC);
        int error = reply.getInt();
        assertThat(reply.getLong()).isEqualTo(handle);
        return error;
    }

    private static ByteBuffer readFully(SocketChannel channel, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new IOException("closed after " + buffer.position() + " of " + length + " bytes");
            }
        }
        return buffer.flip();
    }

    private static void assertClosedByServer(SocketChannel channel) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(64);
        int read;
        do {
            buffer.clear();
            read = channel.read(buffer);
        } while (read > 0);
        assertThat(read).isEqualTo(-1);
    }
}
