package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The seam under the protocol code: server and client each talk through a transport wrapping the plain one, which
 * scrambles every byte it writes and unscrambles every byte it reads, so a byte that went around the transport on
 * either side (handshake, request header, write payload, reply, read data) would reach the other side garbled.
 */
class NbdTransportTest {

    private static final long SIZE = 64L << 20;

    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private final Arena arena = Arena.ofShared();

    @AfterEach
    void close() {
        arena.close();
        memory.close();
    }

    @Test
    void negotiationAndTransmissionRunWhollyThroughAWrappingTransport() throws Exception {
        try (ServerSocketChannel listener = ServerSocketChannel.open()
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))) {
            SocketAddress address = listener.getLocalAddress();
            SocketTransport clientPlain = SocketTransport.connect(address, java.time.Duration.ofSeconds(10));
            Scrambling server = new Scrambling(SocketTransport.over(listener.accept()));
            CountDownLatch closed = new CountDownLatch(1);
            Thread reader = Thread.ofPlatform().name("transport-test-conn").start(new NbdConnection(1, server,
                    memory, new BlockSizeAdapter(memory), NbdServer.Options.defaults(), new RequestStatistics(),
                    closed::countDown));

            // Larger than the connection's input buffer, so part of the payload is read straight into the
            // request's buffer, and the read data goes out of it in a gathering write.
            MemorySegment data = pattern(1 << 20);
            MemorySegment back = arena.allocate(data.byteSize());
            try (NbdClient client = NbdClient.connect(NbdUri.of(address, "disk"), NbdClient.Options.defaults(), new Scrambling(clientPlain))) {
                assertThat(client.size()).isEqualTo(SIZE);
                client.write(8192, data, Durability.FUA).get(10, TimeUnit.SECONDS);
                client.read(8192, back).get(10, TimeUnit.SECONDS);
                client.flush().get(10, TimeUnit.SECONDS);
            }

            assertThat(back.mismatch(data)).isEqualTo(-1);
            assertThat(memory.contents().asSlice(8192, data.byteSize()).mismatch(data)).isEqualTo(-1);
            assertThat(closed.await(10, TimeUnit.SECONDS)).as("the client's disconnect ended the connection").isTrue();
            reader.join();
            assertThat(server.read.get()).as("bytes the server read").isGreaterThan(data.byteSize());
            assertThat(server.written.get()).as("bytes the server wrote").isGreaterThan(data.byteSize());
        }
    }

    private MemorySegment pattern(long length) {
        MemorySegment segment = arena.allocate(length);
        for (long i = 0; i < length; i++) {
            segment.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 131 + 7));
        }
        return segment;
    }

    /** XORs every byte with a key on the way out and back, copying (a test's cipher, not a fast path). */
    private static final class Scrambling implements NbdTransport {
        private static final byte KEY = 0x5a;

        private final NbdTransport plain;
        private final AtomicLong read = new AtomicLong();
        private final AtomicLong written = new AtomicLong();

        Scrambling(NbdTransport plain) {
            this.plain = plain;
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            int start = dst.position();
            int count = plain.read(dst);
            for (int i = start; i < start + count; i++) {
                dst.put(i, (byte) (dst.get(i) ^ KEY));
            }
            read.addAndGet(Math.max(count, 0));
            return count;
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            plain.write(scrambled(src));
        }

        @Override
        public void write(ByteBuffer[] srcs, int offset, int length) throws IOException {
            ByteBuffer[] copies = new ByteBuffer[length];
            for (int i = 0; i < length; i++) {
                copies[i] = scrambled(srcs[offset + i]);
            }
            plain.write(copies, 0, length);
        }

        private ByteBuffer scrambled(ByteBuffer src) {
            ByteBuffer copy = ByteBuffer.allocate(src.remaining());
            while (src.hasRemaining()) {
                copy.put((byte) (src.get() ^ KEY));
            }
            written.addAndGet(copy.position());
            return copy.flip();
        }

        @Override
        public void shutdownInput() throws IOException {
            plain.shutdownInput();
        }

        @Override
        public void shutdownOutput() throws IOException {
            plain.shutdownOutput();
        }

        @Override
        public void close() throws IOException {
            plain.close();
        }
    }
}
