package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@link NbdClient}'s connect and handshake timeouts against servers that never answer: a listener whose backlog is
 * full (the connection is never accepted) and one that accepts and then says nothing.
 */
@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NbdClientTimeoutTest {

    private static final NbdClient.Options SHORT = new NbdClient.Options(Duration.ofMillis(500),
            Duration.ofMillis(500), Duration.ofMillis(500));

    private final List<AutoCloseable> closeables = new ArrayList<>();

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable closeable : closeables.reversed()) {
            closeable.close();
        }
    }

    @Test
    void aServerThatAcceptsButNeverSpeaksFailsTheHandshakeWithinTheTimeout() throws Exception {
        ServerSocket silent = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        closeables.add(silent);
        Thread.ofVirtual().start(() -> {
            try {
                while (true) {
                    closeables.add(silent.accept()); // and never write a byte
                }
            } catch (IOException closed) {
                // the test ended
            }
        });
        NbdUri uri = NbdUri.of(silent.getLocalSocketAddress(), "");
        long start = System.nanoTime();
        assertThatThrownBy(() -> NbdClient.connect(uri, SHORT)).isInstanceOf(IOException.class)
                .hasMessageContaining("did not complete the handshake within 500 ms")
                .hasMessageContaining(uri.toString());
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    }

    @Test
    void aListenerThatNeverAcceptsFailsTheConnectWithinTheTimeout() throws Exception {
        ServerSocket full = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
        closeables.add(full);
        // Nobody accepts: once the accept queue is full the kernel drops further SYNs, so connect() waits.
        InetSocketAddress address = (InetSocketAddress) full.getLocalSocketAddress();
        int queued = 0;
        while (queued < 16) {
            Socket socket = new Socket();
            closeables.add(socket);
            try {
                socket.connect(address, 200);
                queued++;
            } catch (java.net.SocketTimeoutException e) {
                break;
            }
        }
        NbdUri uri = NbdUri.of(address, "");
        long start = System.nanoTime();
        assertThatThrownBy(() -> NbdClient.connect(uri, SHORT)).isInstanceOf(IOException.class)
                .hasMessageContaining("not accepted within 500 ms");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    }
}
