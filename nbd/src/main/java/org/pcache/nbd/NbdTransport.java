package org.pcache.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The byte stream one NBD connection runs over, on either side: the protocol code ({@link NbdConnection},
 * {@link ReplyWriter}, {@link NbdClient}, {@link ReplyReader}, and through them the handshakes and codecs) reads and
 * writes only through it, never through a socket. {@link SocketTransport} is the plain one.
 *
 * <p>Swapping: between two handshake steps a connection may replace its transport by one that wraps it, and every
 * later read and write goes through the wrapper. That is where TLS is to slide in: the server answers NBD_OPT_STARTTLS
 * over the plain transport, then the TLS handshake (a JDK {@code SSLEngine}) and everything after it, the rest of the
 * negotiation and all of transmission, run through a TLS transport over the plain one, with the protocol code above
 * unchanged. The reply writer and reader are made when the handshake ends, from the transport it ended on.
 *
 * <p>Data path: {@link #read} fills the caller's buffer and {@link #write(ByteBuffer[], int, int)} sends the caller's
 * buffers, so a plain transport copies nothing: write payloads are read straight into request buffers, read data is
 * sent straight from them.
 *
 * <p>Threading: one thread reads and one thread at a time writes (callers serialise their writes); {@link #close}
 * and the shutdowns may be called from any thread and end a read or write blocked in another.
 */
interface NbdTransport extends Closeable {

    /**
     * Reads into the remaining space of {@code dst}, blocking until at least one byte arrived; returns the count, 0
     * only when {@code dst} has no room, or -1 at end of stream.
     */
    int read(ByteBuffer dst) throws IOException;

    /** Writes every remaining byte of {@code src}, blocking until all are written. */
    void write(ByteBuffer src) throws IOException;

    /** Writes every remaining byte of {@code srcs[offset]} to {@code srcs[offset + length - 1]}, in order. */
    void write(ByteBuffer[] srcs, int offset, int length) throws IOException;

    /** Reads no more: a read blocked now or made later returns end of stream. */
    void shutdownInput() throws IOException;

    /** Writes no more: the peer reads end of stream once everything written before has arrived. */
    void shutdownOutput() throws IOException;

    /** Closes the stream; idempotent. A read or write blocked in another thread fails. */
    @Override
    void close() throws IOException;
}
