package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.ConnectException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD client: fixed newstyle handshake with NBD_OPT_GO and structured replies, then READ, WRITE (with or
 * without FUA), FLUSH, TRIM and WRITE_ZEROES, up to {@link #MAX_IN_FLIGHT} requests in flight, each
 * identified by its handle. One reader thread ({@code pcache-nbd-client}) decodes replies and completes the
 * futures, so callbacks run on it. Every byte goes through the client's {@link NbdTransport} (a
 * {@link SocketTransport} from {@link #connect(NbdUri)}).
 *
 * <pre>{@code
 * try (NbdClient client = NbdClient.connect(NbdUri.parse("nbd://127.0.0.1:10809/disk"))) {
 *     client.write(0, buffer, Durability.FUA).join();
 * }
 * }</pre>
 *
 * <p>A failed request completes its future with {@link NbdErrorException}; a broken connection fails every
 * request in flight and every later one with an {@link IOException} naming the cause, and completes
 * {@link #broken()}. A reply of NBD_ESHUTDOWN (the server is stopping) breaks the connection the same way, after
 * NBD_CMD_DISC: the server only waits for its clients to leave. A client never reconnects: {@link NbdEngine} replaces a broken one.
 *
 * <p>Timeouts ({@link Options}): the TCP connect, the whole handshake, and each request. A server that does not
 * answer a request within the request timeout is treated as gone: the connection is closed and every request in
 * flight fails with an error that names the request and the timeout, so nothing waits forever on a silent server.
 * The request deadlines are checked by one timer task per client, every quarter of the timeout, on the JDK's shared
 * delayed executor.
 *
 * <p>Threading: request methods may be called from any thread; they block only while the request is being
 * sent and while {@link #MAX_IN_FLIGHT} requests are already in flight. The send path is guarded by
 * {@code sendLock}, the handle table by {@code table}.
 */
public final class NbdClient implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdClient.class);

    public static final int MAX_IN_FLIGHT = 64;

    /**
     * How long the client waits.
     *
     * @param connectTimeout   for the TCP connection to be accepted (a unix socket connects at once or fails)
     * @param handshakeTimeout for the whole negotiation, from the connection to the end of NBD_OPT_GO
     * @param requestTimeout   for the reply to each request, from when it was sent
     */
    public record Options(Duration connectTimeout, Duration handshakeTimeout, Duration requestTimeout) {
        public Options {
            for (Duration timeout : List.of(connectTimeout, handshakeTimeout, requestTimeout)) {
                if (timeout.isNegative() || timeout.isZero()) {
                    throw new IllegalArgumentException("timeout " + timeout + " (expected > 0)");
                }
            }
        }

        /** 10 s to connect, 10 s to negotiate, 60 s per request. */
        public static Options defaults() {
            return new Options(Duration.ofSeconds(10), Duration.ofSeconds(10), Duration.ofSeconds(60));
        }
    }

    private static final long CLOSE_TIMEOUT_SECONDS = 30;
    /** Empty and never written: shared by every request without payload. */
    private static final ByteBuffer NO_PAYLOAD = ByteBuffer.allocate(0);

    private final NbdUri uri;
    private final Options options;
    private final NbdTransport transport;
    private final long size;
    private final int transmissionFlags;
    private final boolean structuredReplies;
    /** The server's id of base:allocation, or -1 when it was not negotiated. */
    private final long baseAllocationId;
    private final int minimumBlockSize;
    private final int maximumBlockSize;
    /** One permit per free place in {@link #table}. */
    private final Semaphore slots = new Semaphore(MAX_IN_FLIGHT);
    private final InFlightTable table = new InFlightTable(MAX_IN_FLIGHT);
    private final ReentrantLock sendLock = new ReentrantLock();
    /** Request header staging; guarded by sendLock. */
    private final ByteBuffer header = ByteBuffer.allocateDirect(NbdProtocol.REQUEST_HEADER_LENGTH);
    private final ByteBuffer[] vector = new ByteBuffer[2];
    private final Thread reader;
    /** Why the connection is unusable; null while it works. */
    private final AtomicReference<IOException> failure = new AtomicReference<>();
    /** Completed with the failure when the connection breaks (not when it is closed). */
    private final CompletableFuture<IOException> broken = new CompletableFuture<>();
    private volatile boolean closing;

    private NbdClient(NbdUri uri, Options options, NbdTransport transport, ClientHandshake handshake) {
        this.uri = uri;
        this.options = options;
        this.transport = transport;
        this.size = handshake.size();
        this.transmissionFlags = handshake.transmissionFlags();
        this.structuredReplies = handshake.structuredReplies();
        this.baseAllocationId = handshake.baseAllocationId();
        this.minimumBlockSize = handshake.minimumBlockSize();
        this.maximumBlockSize = handshake.maximumBlockSize();
        ReplyReader.Listener listener = new ReplyReader.Listener() {
            @Override
            public void completed(ClientRequest request, IOException error) {
                finish(request, error);
            }

            @Override
            public void ended(IOException cause) {
                connectionEnded(cause);
            }
        };
        this.reader = Thread.ofPlatform().name("pcache-nbd-client")
                .unstarted(new ReplyReader(transport, table, structuredReplies, baseAllocationId, listener));
    }

    /** Connects with the default {@link Options}, negotiates, and starts the reader thread. */
    public static NbdClient connect(NbdUri uri) throws IOException {
        return connect(uri, Options.defaults());
    }

    /**
     * Connects, negotiates, and starts the reader thread, each step bounded by its timeout in {@code options}. An
     * {@code nbds} URI negotiates TLS with the credentials of its {@link NbdUri#tlsCertificates()} directory.
     */
    public static NbdClient connect(NbdUri uri, Options options) throws IOException {
        TlsCredentials credentials = null;
        if (uri.tls()) {
            if (uri.tlsCertificates() == null) {
                throw new IOException("cannot connect to " + uri + ": TLS needs a credentials directory "
                        + "(?tls-certificates=DIR in the URI)");
            }
            credentials = TlsCredentials.client(uri.tlsCertificates());
        }
        NbdTransport transport;
        try {
            transport = SocketTransport.connect(uri.address(), options.connectTimeout());
        } catch (IOException e) {
            String reason = e instanceof ConnectException ? "connection refused or no server listening"
                    : e instanceof SocketTimeoutException ? "not accepted within " + seconds(options.connectTimeout())
                    : e.toString();
            throw new IOException("cannot connect to NBD server " + uri + ": " + reason, e);
        }
        return connect(uri, options, transport, credentials);
    }

    /** {@link #connect(NbdUri, Options, NbdTransport, TlsCredentials)} without TLS. */
    static NbdClient connect(NbdUri uri, Options options, NbdTransport transport) throws IOException {
        return connect(uri, options, transport, null);
    }

    /**
     * Negotiates over {@code transport}, already connected to {@code uri}'s server, and starts the reader thread.
     * The client owns the transport from now on (closed here if negotiation fails). Each handshake step writes and
     * reads through the transport of that moment: with {@code credentials} (not null) the client sends
     * NBD_OPT_STARTTLS first and, once acknowledged, wraps the transport in a {@link TlsTransport}. When the
     * handshake timeout passes first, the connection is closed under the blocked read.
     */
    static NbdClient connect(NbdUri uri, Options options, NbdTransport transport, TlsCredentials credentials)
            throws IOException {
        NbdTransport connection = transport;
        CompletableFuture<Void> negotiation = new CompletableFuture<Void>()
                .orTimeout(options.handshakeTimeout().toNanos(), TimeUnit.NANOSECONDS);
        negotiation.whenComplete((ignored, timeout) -> {
            if (timeout != null) {
                closeQuietly(uri, connection);
            }
        });
        try {
            ByteBuffer in = ByteBuffer.allocate(ClientHandshake.MIN_INPUT_CAPACITY).flip();
            ByteBuffer out = ByteBuffer.allocate(ClientHandshake.MAX_OUTPUT_BYTES);
            ClientHandshake handshake = new ClientHandshake(uri.exportName(), credentials != null);
            ClientHandshake.State state;
            while ((state = handshake.decode(in, out)) != ClientHandshake.State.TRANSMISSION) {
                transport.write(out.flip());
                out.clear();
                if (state == ClientHandshake.State.TLS) {
                    if (in.hasRemaining()) {
                        throw new NbdProtocolException("server sent " + in.remaining()
                                + " plain bytes after acknowledging NBD_OPT_STARTTLS");
                    }
                    transport = TlsTransport.start(transport, credentials.clientEngine(uri.address()));
                    handshake.tlsStarted(out);
                    continue;
                }
                in.compact();
                int read = transport.read(in);
                in.flip();
                if (read < 0) {
                    throw new NbdProtocolException("server closed the connection during the handshake");
                }
            }
            if (!negotiation.complete(null)) {
                throw handshakeTimeout(uri, options, null);
            }
            NbdClient client = new NbdClient(uri, options, transport, handshake);
            client.reader.start();
            client.scheduleDeadlineCheck();
            LOG.debug("nbd client connected uri={} size={} flags=0x{}", uri, client.size,
                    Integer.toHexString(client.transmissionFlags));
            return client;
        } catch (IOException | RuntimeException e) {
            transport.close();
            if (negotiation.isCompletedExceptionally()) {
                throw handshakeTimeout(uri, options, e);
            }
            throw e;
        }
    }

    private static IOException handshakeTimeout(NbdUri uri, Options options, Exception cause) {
        return new IOException("NBD server " + uri + " did not complete the handshake within "
                + seconds(options.handshakeTimeout()) + " (it accepted the connection but does not answer)", cause);
    }

    private static String seconds(Duration duration) {
        return duration.toMillis() % 1000 == 0 ? duration.toSeconds() + " s" : duration.toMillis() + " ms";
    }

    public NbdUri uri() {
        return uri;
    }

    public long size() {
        return size;
    }

    /**
     * Completes with the failure once the connection breaks (the server closed it, a protocol error, a request
     * timeout); never completes when the client is closed.
     */
    public CompletableFuture<IOException> broken() {
        return broken;
    }

    public boolean has(int transmissionFlag) {
        return (transmissionFlags & transmissionFlag) != 0;
    }

    public boolean structuredReplies() {
        return structuredReplies;
    }

    /** Whether the server agreed to the base:allocation metadata context, so {@link #blockStatus} may be used. */
    public boolean hasBaseAllocation() {
        return baseAllocationId >= 0;
    }

    /** Required alignment of offsets and lengths; 1 when the server advertised none. */
    public int minimumBlockSize() {
        return minimumBlockSize;
    }

    /** Longest READ or WRITE the server accepts (at most 32 MiB). */
    public int maximumBlockSize() {
        return maximumBlockSize;
    }

    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        checkPayload(offset, dst.byteSize());
        return submit(NbdCommand.READ, 0, offset, dst.byteSize(), null, dst);
    }

    /** Writes {@code src}; it must not change until the future completes. */
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        checkPayload(offset, src.byteSize());
        return submit(NbdCommand.WRITE, fua(durability), offset, src.byteSize(), src, null);
    }

    public CompletableFuture<Void> flush() {
        return submit(NbdCommand.FLUSH, 0, 0, 0, null, null);
    }

    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        checkRange(offset, length);
        return submit(NbdCommand.TRIM, fua(durability), offset, length, null, null);
    }

    /** Zeroes the range; the server may leave a hole (no NO_HOLE flag). */
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        checkRange(offset, length);
        return submit(NbdCommand.WRITE_ZEROES, fua(durability), offset, length, null, null);
    }

    /**
     * NBD_CMD_BLOCK_STATUS with base:allocation: the runs from {@code offset}, at least one, at most {@code length}
     * bytes (the server may answer less). Only when {@link #hasBaseAllocation()}.
     */
    public CompletableFuture<List<NbdExport.Extent>> blockStatus(long offset, long length) {
        if (!hasBaseAllocation()) {
            throw new IllegalStateException("the server " + uri + " did not agree to base:allocation");
        }
        checkRange(offset, length);
        ClientRequest request = new ClientRequest(NbdCommand.BLOCK_STATUS, offset, length, null);
        return submit(request, 0, null).thenApply(ignored -> request.extents);
    }

    /**
     * Waits for the requests in flight (up to 30 s), sends NBD_CMD_DISC, and closes the connection; requests
     * still unanswered then fail.
     */
    @Override
    public void close() throws IOException {
        if (closing) {
            return;
        }
        closing = true;
        try {
            if (failure.get() == null && slots.tryAcquire(MAX_IN_FLIGHT, CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                disconnect();
                slots.release(MAX_IN_FLIGHT);
            }
            if (!reader.join(Duration.ofSeconds(CLOSE_TIMEOUT_SECONDS))) {
                transport.close();
                reader.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            transport.close();
        }
    }

    /** NBD_CMD_DISC, then end of stream, which the server answers by closing: the reader sees it and exits. */
    private void disconnect() {
        try {
            send(NbdCommand.DISC.type(), 0, 0, 0, 0, null);
            transport.shutdownOutput();
        } catch (IOException e) {
            LOG.debug("nbd client {}: disconnect failed: {}", uri, e.toString());
            try {
                transport.close();
            } catch (IOException closeFailure) {
                LOG.debug("nbd client {}: close: {}", uri, closeFailure.toString());
            }
        }
    }

    private static int fua(Durability durability) {
        return durability == Durability.FUA ? NbdProtocol.CMD_FLAG_FUA : 0;
    }

    private void checkPayload(long offset, long length) {
        checkRange(offset, length);
        if (length > maximumBlockSize) {
            throw new IllegalArgumentException("request of " + length + " bytes (expected <= " + maximumBlockSize
                    + "); split it");
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length <= 0 || length > 0xffff_ffffL || offset > size - length) {
            throw new IllegalArgumentException("range [" + offset + ", +" + length + ") outside export of " + size
                    + " bytes");
        }
    }

    private CompletableFuture<Void> submit(NbdCommand command, int flags, long offset, long length,
                                           MemorySegment src, MemorySegment dst) {
        return submit(new ClientRequest(command, offset, length, dst), flags, src);
    }

    private CompletableFuture<Void> submit(ClientRequest request, int flags, MemorySegment src) {
        NbdCommand command = request.command;
        long offset = request.offset;
        long length = request.length;
        IOException broken = failure.get();
        if (broken != null || closing) {
            request.future.completeExceptionally(broken != null ? broken : closedException());
            return request.future;
        }
        try {
            slots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            request.future.completeExceptionally(e);
            return request.future;
        }
        if (failure.get() != null || closing) {
            slots.release();
            request.future.completeExceptionally(failure.get() != null ? failure.get() : closedException());
            return request.future;
        }
        request.sentNanos = System.nanoTime();
        table.register(request);
        try {
            send(command.type(), flags, request.handle, offset, length, src);
        } catch (IOException e) {
            fail(new IOException("NBD connection to " + uri + " broke while sending " + command + ": " + e, e));
        }
        return request.future;
    }

    private void send(int type, int flags, long handle, long offset, long length, MemorySegment payload)
            throws IOException {
        sendLock.lock();
        try {
            header.clear();
            header.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(handle).putLong(offset).putInt((int) length).flip();
            vector[0] = header;
            vector[1] = payload == null ? NO_PAYLOAD : payload.asByteBuffer();
            transport.write(vector, 0, vector.length);
        } finally {
            vector[1] = null;
            sendLock.unlock();
        }
    }

    private void finish(ClientRequest request, IOException error) {
        if (!table.remove(request)) {
            return;
        }
        slots.release();
        if (error == null) {
            request.future.complete(null);
        } else {
            request.future.completeExceptionally(error);
        }
        if (error instanceof NbdErrorException refused && refused.error() == NbdError.ESHUTDOWN && !closing) {
            serverShuttingDown(request);
        }
    }

    /**
     * The server answered {@code request} with NBD_ESHUTDOWN: it is stopping and waits for its clients to go (nbdkit
     * and pcache keep the connection open, answering ESHUTDOWN, until the client disconnects). proto.md: the client
     * SHOULD then disconnect softly. So NBD_CMD_DISC is sent, unless another thread is sending (the reader thread must
     * not wait), and the connection is broken like a lost one, so the engine reconnects instead of retrying a server
     * that only refuses.
     */
    private void serverShuttingDown(ClientRequest request) {
        if (failure.get() != null) {
            return;
        }
        if (sendLock.tryLock()) {
            try {
                send(NbdCommand.DISC.type(), 0, 0, 0, 0, null);
            } catch (IOException e) {
                LOG.debug("nbd client {}: disconnect from a stopping server failed: {}", uri, e.toString());
            } finally {
                sendLock.unlock();
            }
        }
        fail(new IOException("NBD server " + uri + " is shutting down (it answered " + request
                + " with NBD_ESHUTDOWN); connection closed"));
    }

    /** The reader thread stopped: after our own disconnect, or because the connection failed. */
    private void connectionEnded(IOException cause) {
        if (closing) {
            fail(closedException());
        } else if (cause == null) {
            fail(new IOException("NBD server " + uri + " closed the connection"));
        } else {
            fail(new IOException("NBD connection to " + uri + " failed: " + cause.getMessage(), cause));
        }
    }

    /** Fails every request in flight and every later one; the first cause wins. */
    private void fail(IOException cause) {
        if (failure.compareAndSet(null, cause) && !closing) {
            LOG.debug("nbd client {}: {}", uri, cause.getMessage());
            broken.complete(cause);
        }
        for (ClientRequest request : table.snapshot()) {
            finish(request, failure.get());
        }
        closeQuietly(uri, transport);
    }

    /** Checks the request deadlines every quarter of the request timeout, until the connection ends. */
    private void scheduleDeadlineCheck() {
        long tick = Math.max(1, options.requestTimeout().toNanos() / 4);
        CompletableFuture.delayedExecutor(tick, TimeUnit.NANOSECONDS).execute(() -> {
            if (failure.get() == null && !closing) {
                checkDeadlines();
                scheduleDeadlineCheck();
            }
        });
    }

    /** Fails the connection when a request has waited longer than the request timeout. */
    private void checkDeadlines() {
        long now = System.nanoTime();
        for (ClientRequest request : table.snapshot()) {
            if (now - request.sentNanos > options.requestTimeout().toNanos()) {
                fail(new IOException("NBD server " + uri + " did not answer " + request + " within "
                        + seconds(options.requestTimeout()) + "; connection closed"));
                return;
            }
        }
    }

    private static void closeQuietly(NbdUri uri, NbdTransport transport) {
        try {
            transport.close();
        } catch (IOException e) {
            LOG.debug("nbd client {}: close: {}", uri, e.toString());
        }
    }

    private IOException closedException() {
        return new IOException("NBD client for " + uri + " is closed");
    }
}
