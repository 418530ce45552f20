package org.pcache.nbd;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;

/**
 * The plain {@link NbdTransport}: a blocking TCP or unix {@link SocketChannel}, each call passed straight to it (no
 * buffer of its own, no copy). TCP sockets get TCP_NODELAY, as proto.md asks of both sides.
 *
 * <p>Threading: as {@link NbdTransport}; the channel lets one reader and one writer block at once, and close wakes
 * both.
 */
final class SocketTransport implements NbdTransport {

    private final SocketChannel channel;

    private SocketTransport(SocketChannel channel) {
        this.channel = channel;
    }

    /** A transport over a connected {@code channel}, which it owns from now on (closed here if this fails). */
    static SocketTransport over(SocketChannel channel) throws IOException {
        try {
            if (channel.getLocalAddress() instanceof InetSocketAddress) {
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            }
            return new SocketTransport(channel);
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * Connects to {@code address}, a TCP address (its host name resolved now, the connection accepted within
     * {@code timeout} or a {@link java.net.SocketTimeoutException}) or a unix socket (which connects at once or fails).
     */
    static SocketTransport connect(SocketAddress address, Duration timeout) throws IOException {
        SocketChannel channel;
        SocketAddress target = address;
        if (address instanceof UnixDomainSocketAddress) {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } else {
            InetSocketAddress inet = (InetSocketAddress) address;
            target = new InetSocketAddress(inet.getHostString(), inet.getPort());
            channel = SocketChannel.open();
        }
        try {
            if (target instanceof InetSocketAddress) {
                channel.socket().connect(target, (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            } else {
                channel.connect(target);
            }
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
        return over(channel);
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        return channel.read(dst);
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        while (src.hasRemaining()) {
            channel.write(src);
        }
    }

    @Override
    public void write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long remaining = 0;
        for (int i = offset; i < offset + length; i++) {
            remaining += srcs[i].remaining();
        }
        while (remaining > 0) {
            remaining -= channel.write(srcs, offset, length);
        }
    }

    @Override
    public void shutdownInput() throws IOException {
        channel.shutdownInput();
    }

    @Override
    public void shutdownOutput() throws IOException {
        channel.shutdownOutput();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
