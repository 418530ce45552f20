package org.pcache.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS over another {@link NbdTransport}, through a JDK {@link SSLEngine}: what NBD_OPT_STARTTLS switches a
 * connection to, on either side. {@link #start} runs the TLS handshake over the plain transport before it returns;
 * every later read and write goes through TLS records.
 *
 * <p>Copies: reads decrypt straight into the caller's buffer when it can take a whole record, otherwise through a
 * record-sized buffer; writes encrypt into an output buffer of a few records and send it.
 *
 * <p>Ending: {@link #shutdownOutput} sends TLS close_notify before the plain end of stream (the client's disconnect).
 * {@link #close} closes the plain transport without one: it may be called from any thread while a write is blocked
 * on a peer that stopped reading, and must not wait for that peer. A close_notify or end of stream from the peer is
 * end of stream.
 *
 * <p>Threading: as {@link NbdTransport}. The engine allows one wrap and one unwrap at once; wraps, and writes to
 * the plain transport, hold {@code writeLock}, which the reader also takes when the engine asks it to answer
 * (a TLS 1.3 key update).
 */
final class TlsTransport implements NbdTransport {

    /** Records the output buffer holds before it is sent. */
    private static final int OUTPUT_RECORDS = 4;
    /** What {@link #unwrap} returns when the caller's buffer cannot take the next record. */
    private static final int OVERFLOW = -2;

    private final NbdTransport plain;
    private final SSLEngine engine;
    private final ReentrantLock writeLock = new ReentrantLock();
    // Owned by the reader: encrypted bytes received (read mode) and decrypted bytes not yet returned (read mode).
    private ByteBuffer netIn;
    private ByteBuffer appIn;
    /** Encrypted bytes to send; guarded by writeLock, empty between calls. */
    private final ByteBuffer netOut;
    private volatile boolean inputShut;

    private TlsTransport(NbdTransport plain, SSLEngine engine) {
        this.plain = plain;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.netIn = ByteBuffer.allocateDirect(packet).flip();
        this.appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize()).flip();
        this.netOut = ByteBuffer.allocateDirect(OUTPUT_RECORDS * packet);
    }

    /**
     * Runs the TLS handshake with {@code engine} over {@code plain} and returns the transport over it. On failure
     * the plain transport is left open for the caller to close; the exception says why the handshake failed.
     */
    static TlsTransport start(NbdTransport plain, SSLEngine engine) throws IOException {
        TlsTransport transport = new TlsTransport(plain, engine);
        try {
            transport.handshake();
        } catch (SSLException e) {
            throw new TlsHandshakeException("TLS handshake failed: " + e.getMessage(), e);
        }
        return transport;
    }

    /** The TLS handshake could not be completed: bad certificate, no common protocol, peer hung up. */
    static final class TlsHandshakeException extends IOException {
        private static final long serialVersionUID = 1L;

        TlsHandshakeException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    private void handshake() throws IOException {
        engine.beginHandshake();
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP -> sendHandshakeMessage();
                case NEED_UNWRAP, NEED_UNWRAP_AGAIN -> {
                    if (unwrap(appIn.compact()) < 0) {
                        appIn.flip();
                        throw new SSLException("peer closed the connection during the TLS handshake");
                    }
                    appIn.flip();
                }
                case NEED_TASK -> runTasks();
                case FINISHED, NOT_HANDSHAKING -> {
                    return;
                }
            }
        }
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!dst.hasRemaining()) {
            return 0;
        }
        while (true) {
            if (appIn.hasRemaining()) {
                int count = Math.min(appIn.remaining(), dst.remaining());
                dst.put(dst.position(), appIn, appIn.position(), count);
                dst.position(dst.position() + count);
                appIn.position(appIn.position() + count);
                return count;
            }
            if (inputShut) {
                return -1;
            }
            int produced = OVERFLOW;
            if (dst.remaining() >= engine.getSession().getApplicationBufferSize()) {
                produced = unwrap(dst);
            }
            if (produced == OVERFLOW) {
                produced = unwrap(appIn.clear());
                appIn.flip();
                if (produced > 0) {
                    continue;
                }
            }
            if (produced != 0) {
                return produced;
            }
        }
    }

    /**
     * Unwraps one record into {@code dst} (write mode), reading from the plain transport as needed and answering what
     * the engine asks to answer; returns the bytes produced (0 for a record without data), -1 at end of stream, or
     * {@link #OVERFLOW} when the caller's buffer cannot take the record.
     */
    private int unwrap(ByteBuffer dst) throws IOException {
        while (true) {
            SSLEngineResult result = engine.unwrap(netIn, dst);
            switch (result.getStatus()) {
                case OK -> {
                    answer(result.getHandshakeStatus());
                    return result.bytesProduced();
                }
                case BUFFER_UNDERFLOW -> {
                    if (!fill()) {
                        return -1;
                    }
                }
                case BUFFER_OVERFLOW -> {
                    if (dst != appIn) {
                        return OVERFLOW;
                    }
                    appIn = ByteBuffer.allocateDirect(engine.getSession().getApplicationBufferSize());
                    dst = appIn;
                }
                case CLOSED -> {
                    return -1;
                }
            }
        }
    }

    /** After an unwrap: runs the engine's tasks and sends what it has to say back (a handshake flight, a key update). */
    private void answer(SSLEngineResult.HandshakeStatus status) throws IOException {
        if (status == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
        }
        while (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            sendHandshakeMessage();
        }
    }

    /** Wraps and sends what the engine has to send without application data (a handshake or post-handshake message). */
    private void sendHandshakeMessage() throws IOException {
        writeLock.lock();
        try {
            wrap(new ByteBuffer[0], 0, 0);
            flush();
        } finally {
            writeLock.unlock();
        }
    }

    /** Reads more encrypted bytes into {@link #netIn}, growing it for a record larger than it; false at the end. */
    private boolean fill() throws IOException {
        int packet = engine.getSession().getPacketBufferSize();
        if (netIn.capacity() - netIn.remaining() < 1 || netIn.capacity() < packet) {
            ByteBuffer larger = ByteBuffer.allocateDirect(Math.max(packet, 2 * netIn.capacity()));
            larger.put(netIn).flip();
            netIn = larger;
        }
        netIn.compact();
        try {
            return plain.read(netIn) >= 0;
        } finally {
            netIn.flip();
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    @Override
    public void write(ByteBuffer src) throws IOException {
        write(new ByteBuffer[] {src}, 0, 1);
    }

    @Override
    public void write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        writeLock.lock();
        try {
            wrap(srcs, offset, length);
            flush();
        } finally {
            writeLock.unlock();
        }
    }

    /** Encrypts everything remaining in the buffers into {@link #netOut}, or one handshake message when none. */
    private void wrap(ByteBuffer[] srcs, int offset, int length) throws IOException {
        assert writeLock.isHeldByCurrentThread();
        SSLEngineResult.Status status;
        do {
            SSLEngineResult result = engine.wrap(srcs, offset, length, netOut);
            status = result.getStatus();
            switch (status) {
                case OK -> {
                    if (result.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                        runTasks();
                    }
                }
                case BUFFER_OVERFLOW -> flush();
                case CLOSED -> throw new SSLException("TLS session closed, cannot write");
                case BUFFER_UNDERFLOW -> throw new IllegalStateException("wrap reported a buffer underflow");
            }
        } while (status == SSLEngineResult.Status.BUFFER_OVERFLOW || remaining(srcs, offset, length) > 0);
    }

    private void flush() throws IOException {
        plain.write(netOut.flip());
        netOut.clear();
    }

    private static long remaining(ByteBuffer[] srcs, int offset, int length) {
        long remaining = 0;
        for (int i = offset; i < offset + length; i++) {
            remaining += srcs[i].remaining();
        }
        return remaining;
    }

    @Override
    public void shutdownInput() throws IOException {
        inputShut = true;
        plain.shutdownInput();
    }

    @Override
    public void shutdownOutput() throws IOException {
        writeLock.lock();
        try {
            closeNotify();
        } finally {
            writeLock.unlock();
        }
        plain.shutdownOutput();
    }

    @Override
    public void close() throws IOException {
        plain.close();
    }

    private void closeNotify() throws IOException {
        if (engine.isOutboundDone()) {
            return;
        }
        engine.closeOutbound();
        while (!engine.isOutboundDone()) {
            SSLEngineResult result = engine.wrap(new ByteBuffer[0], 0, 0, netOut);
            if (result.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                flush();
            } else if (result.bytesProduced() == 0) {
                break;
            }
        }
        flush();
    }
}
