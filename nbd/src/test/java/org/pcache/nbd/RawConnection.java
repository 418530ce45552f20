package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A client written against the wire format alone, as the NBD project's test client is: NBD_OPT_EXPORT_NAME without
 * zeroes, simple replies, requests sent as raw headers, so a test controls every byte. The channel is closed after
 * a minute whatever happens, so a reply that never comes fails the test rather than hanging it.
 */
final class RawConnection implements AutoCloseable {

    private static final long WATCHDOG_SECONDS = 60;

    private final SocketChannel channel;
    private int transmissionFlags;

    private RawConnection(SocketChannel channel) {
        this.channel = channel;
    }

    /** The transmission flags of the export-name reply. */
    int transmissionFlags() {
        return transmissionFlags;
    }

    static RawConnection negotiate(SocketAddress address) throws IOException {
        SocketChannel channel = SocketChannel.open(address);
        // A test that waits for a reply the server never sends fails on the closed channel instead of hanging.
        CompletableFuture.delayedExecutor(WATCHDOG_SECONDS, TimeUnit.SECONDS).execute(() -> {
            try {
                channel.close();
            } catch (IOException ignored) {
                // already closed
            }
        });
        RawConnection connection = new RawConnection(channel);
        connection.readFully(NbdProtocol.GREETING_LENGTH);
        connection.send(ByteBuffer.allocate(4 + NbdProtocol.OPTION_HEADER_LENGTH).putInt(3)
                .putLong(NbdProtocol.IHAVEOPT).putInt(NbdOption.EXPORT_NAME.code()).putInt(0).flip());
        ByteBuffer reply = connection.readFully(NbdProtocol.EXPORT_NAME_REPLY_LENGTH);
        connection.transmissionFlags = Short.toUnsignedInt(reply.getShort(Long.BYTES));
        return connection;
    }

    void request(NbdCommand command, long handle, long offset, long length) throws IOException {
        send(RequestDecoderTest.request(0, command.type(), handle, offset, length));
    }

    void write(long handle, long offset, ByteBuffer payload) throws IOException {
        request(NbdCommand.WRITE, handle, offset, payload.remaining());
        send(payload);
    }

    /** Reads one simple reply, checks its handle, returns its error field. */
    int reply(long handle) throws IOException {
        ByteBuffer reply = readFully(NbdProtocol.SIMPLE_REPLY_LENGTH);
        assertThat(reply.getInt()).isEqualTo(NbdProtocol.SIMPLE_REPLY_MAGIC);
        int error = reply.getInt();
        assertThat(reply.getLong()).isEqualTo(handle);
        return error;
    }

    ByteBuffer readFully(int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                throw new IOException("closed after " + buffer.position() + " of " + length + " bytes");
            }
        }
        return buffer.flip();
    }

    /** Reads until the server closes; true if it did, false if it sent {@code limit} bytes first. */
    boolean closedByServer(int limit) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(limit);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer) < 0) {
                return true;
            }
        }
        return false;
    }

    private void send(ByteBuffer data) throws IOException {
        while (data.hasRemaining()) {
            channel.write(data);
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
