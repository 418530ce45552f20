package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The plain transport over a loopback TCP pair: gathering writes of the buffers named, end of stream, Nagle off. */
class SocketTransportTest {

    private ServerSocketChannel listener;
    private SocketTransport near;
    private SocketTransport far;
    private SocketChannel farChannel;

    @BeforeEach
    void connect() throws Exception {
        listener = ServerSocketChannel.open().bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        near = SocketTransport.connect(listener.getLocalAddress(), java.time.Duration.ofSeconds(10));
        farChannel = listener.accept();
        far = SocketTransport.over(farChannel);
    }

    @AfterEach
    void close() throws Exception {
        near.close();
        far.close();
        listener.close();
    }

    @Test
    void aGatheringWriteSendsTheBuffersNamedWholeAndInOrder() throws Exception {
        ByteBuffer[] parts = new ByteBuffer[4];
        for (int i = 0; i < parts.length; i++) {
            parts[i] = ByteBuffer.allocateDirect((i + 1) << 20);
            while (parts[i].hasRemaining()) {
                parts[i].put((byte) (i + 1));
            }
            parts[i].flip();
        }
        long total = (1 + 2 + 3 + 4) << 20;
        CompletableFuture<Void> written = CompletableFuture.runAsync(() -> {
            try {
                near.write(parts, 1, 3);
                near.shutdownOutput();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });

        ByteBuffer in = ByteBuffer.allocate(64 << 10);
        long received = 0;
        int read;
        while ((read = far.read(in.clear())) >= 0) {
            for (int i = 0; i < read; i++) {
                byte expected = (byte) (received + i < 2 << 20 ? 2 : received + i < 5 << 20 ? 3 : 4);
                assertThat(in.get(i)).as("byte %d", received + i).isEqualTo(expected);
            }
            received += read;
        }
        written.get(30, TimeUnit.SECONDS);
        assertThat(received).as("parts 1 to 3, not part 0").isEqualTo(total - (1 << 20));
        assertThat(parts[0].remaining()).isEqualTo(1 << 20);
    }

    @Test
    void tcpSocketsHaveNagleOff() throws Exception {
        assertThat(farChannel.getOption(StandardSocketOptions.TCP_NODELAY)).isTrue();
    }

    @Test
    void shutdownInputEndsTheStreamForTheReader() throws Exception {
        far.shutdownInput();
        assertThat(far.read(ByteBuffer.allocate(16))).isEqualTo(-1);
    }
}
