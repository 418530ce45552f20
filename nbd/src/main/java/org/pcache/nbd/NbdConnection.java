package org.pcache.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client connection: negotiates with {@link ServerHandshake}, then loops read, validate, execute, and
 * hands each finished request to its {@link ReplyWriter}, timing each one the export ran into the server's
 * {@link RequestStatistics}. Many requests are in flight at once, bounded by a
 * {@link RequestWindow}; the export may complete them in any order.
 *
 * <p>Ending: NBD_CMD_DISC, the client hanging up, a framing error or {@link #endInput} all end reading; the
 * connection then waits (up to the drain timeout) for the requests in flight to be answered and closes. {@link #stop}
 * (the server stopping) keeps reading but answers every new request with NBD_ESHUTDOWN, upon which the client must
 * disconnect (proto.md); the server ends the input once the connection is quiet ({@link #endInputIfQuiet}). A
 * framing error closes this connection only; a request the validator refuses gets an error reply (a WRITE's once
 * its payload has been read and dropped), and nothing is written.
 *
 * <p>Transport: every byte goes through the connection's {@link NbdTransport}. The handshake reads and writes
 * through the current one at each step, so a step may replace it by a wrapper (STARTTLS); the reply writer is made
 * from the transport the handshake ended on.
 *
 * <p>Threading: {@link #run} is the body of the connection's reader thread, which owns the decoders and the
 * input buffer and is the only one to replace the transport. Completions arrive on export threads and go
 * straight to the writer. {@link #stop} may be called from any thread.
 */
final class NbdConnection implements Runnable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdConnection.class);
    private static final int INPUT_CAPACITY = 256 * 1024;
    private static final int OUTPUT_CAPACITY = 32 * 1024;

    static {
        assert INPUT_CAPACITY >= ServerHandshake.MIN_INPUT_CAPACITY;
        assert OUTPUT_CAPACITY >= ServerHandshake.MAX_REPLY_BYTES + NbdProtocol.GREETING_LENGTH;
    }

    private final int id;
    /** Replaced only by the reader thread, during the handshake; read by {@link #stop} from any thread. */
    private volatile NbdTransport transport;
    private final NbdExport export;
    /** The export as clients address it: any byte, READ and WRITE up to 64 MiB; this connection's view of it. */
    private final BlockSizeAdapter blockSizes;
    private final NbdServer.Options options;
    private final NbdServer.Tls tls;
    private final RequestStatistics statistics;
    private final Runnable onClosed;
    private final RequestWindow window;
    private final BufferPool pool;
    // Owned by the reader thread.
    private final ByteBuffer in = ByteBuffer.allocateDirect(INPUT_CAPACITY).flip();
    private final RequestDecoder decoder = new RequestDecoder();
    private TransmissionSettings settings;
    private ServerRequest pendingWrite;
    /** A refused WRITE whose payload is being drained: answered once the last payload byte is read. */
    private ServerRequest pendingRefusal;
    private ReplyWriter writer;
    private Thread writerThread;
    /** Where the connection is in its life; moved by the reader thread and by {@link #stop}. */
    private enum State {
        /** In the handshake. */
        NEGOTIATING,
        /** Reading requests and answering them. */
        TRANSMITTING,
        /** Stopped during the handshake: the transport is closed, nothing is transmitted. */
        STOPPED_NEGOTIATING,
        /** Stopped while transmitting: requests in flight are answered, new ones get NBD_ESHUTDOWN. */
        STOPPED_TRANSMITTING,
        /** Finished: every reply sent or given up, the transport closed. */
        CLOSED
    }

    private final AtomicReference<State> state = new AtomicReference<>(State.NEGOTIATING);
    /** Request headers read so far; written by the reader thread only, read by the server's quiet check. */
    private final AtomicLong requestsRead = new AtomicLong();
    /** {@link #requestsRead} at the previous quiet check; used by the server's timer thread only. */
    private long requestsAtLastCheck = -1;
    private final AtomicBoolean inputEnded = new AtomicBoolean();

    NbdConnection(int id, NbdTransport transport, NbdExport export, BlockSizeAdapter blockSizes,
                  NbdServer.Options options, RequestStatistics statistics, Runnable onClosed) {
        this(id, transport, export, blockSizes, options, NbdServer.Tls.OFF, statistics, onClosed);
    }

    NbdConnection(int id, NbdTransport transport, NbdExport export, BlockSizeAdapter blockSizes,
                  NbdServer.Options options, NbdServer.Tls tls, RequestStatistics statistics, Runnable onClosed) {
        this.id = id;
        this.transport = transport;
        this.export = export;
        this.blockSizes = blockSizes.forConnection();
        this.options = options;
        this.tls = tls;
        this.statistics = statistics;
        this.onClosed = onClosed;
        this.window = new RequestWindow(options.maxInFlightRequests(), options.maxInFlightBytes());
        this.pool = new BufferPool(options.maxInFlightBytes());
    }

    @Override
    public void run() {
        try {
            if (negotiate() && state.compareAndSet(State.NEGOTIATING, State.TRANSMITTING)) {
                transmit();
            }
        } catch (NbdProtocolException e) {
            if (stopping()) {
                LOG.debug("nbd conn={} cut off by server stop: {}", id, e.getMessage());
            } else {
                LOG.warn("nbd conn={} closing: client broke the protocol: {}", id, e.getMessage());
            }
        } catch (ClosedChannelException e) {
            LOG.debug("nbd conn={} transport closed", id);
        } catch (IOException e) {
            LOG.debug("nbd conn={} i/o error: {}", id, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            // A bug, not client input: end this connection only, and say so loudly.
            LOG.error("nbd conn={} failed", id, e);
        } finally {
            finish();
        }
    }

    /**
     * Begins a graceful end: requests in flight are answered, every request read from now on gets NBD_ESHUTDOWN
     * (its WRITE payload drained), and a client that obeys the spec then disconnects. During the handshake there is
     * nothing to finish, so the connection is simply closed.
     */
    void stop() {
        if (state.compareAndSet(State.NEGOTIATING, State.STOPPED_NEGOTIATING)) {
            closeQuietly();
        } else {
            state.compareAndSet(State.TRANSMITTING, State.STOPPED_TRANSMITTING);
        }
    }

    /**
     * After {@link #stop}: ends the input when nothing is in flight and no request arrived since the previous call,
     * so an idle client (or one that ignores NBD_ESHUTDOWN and went quiet) does not hold the server's stop.
     */
    void endInputIfQuiet() {
        long read = requestsRead.get();
        if (state.get() == State.STOPPED_TRANSMITTING && read == requestsAtLastCheck && window.requests() == 0) {
            endInput();
        }
        requestsAtLastCheck = read;
    }

    /** Stops reading: what was read is answered, then the connection closes. Idempotent; any thread. */
    void endInput() {
        if (inputEnded.compareAndSet(false, true)) {
            try {
                transport.shutdownInput();
            } catch (IOException e) {
                LOG.debug("nbd conn={} ending input: {}", id, e.toString());
            }
        }
    }

    private boolean stopping() {
        State now = state.get();
        return now == State.STOPPED_NEGOTIATING || now == State.STOPPED_TRANSMITTING;
    }

    /** Closes a connection still negotiating when its handshake deadline passes. */
    void handshakeTimedOut() {
        if (state.get() == State.NEGOTIATING) {
            LOG.warn("nbd conn={} closing: handshake not finished within {}", id, options.handshakeTimeout());
            closeQuietly();
        }
    }

    private boolean negotiate() throws IOException {
        ByteBuffer out = ByteBuffer.allocate(OUTPUT_CAPACITY);
        ServerHandshake.encodeGreeting(out);
        ServerHandshake handshake = new ServerHandshake(export, tls.mode());
        // One option per turn, its replies sent and the next bytes read through the transport of that moment: a
        // step that replaces the transport (STARTTLS) takes effect from the next read on.
        while (true) {
            int consumed = in.position();
            ServerHandshake.State state = handshake.decode(in, out);
            send(out.flip());
            out.clear();
            switch (state) {
                case TRANSMISSION -> {
                    settings = handshake.settings();
                    LOG.debug("nbd conn={} transmission: {}", id, settings);
                    return true;
                }
                case CLOSED -> {
                    return false;
                }
                case STARTTLS -> {
                    if (!startTls(handshake)) {
                        return false;
                    }
                }
                default -> {
                    if (in.position() == consumed && !fill()) {
                        LOG.debug("nbd conn={} client left during the handshake", id);
                        return false;
                    }
                }
            }
        }
    }

    /** Runs the TLS handshake after the STARTTLS ACK went out, and moves the connection onto TLS; false if it failed. */
    private boolean startTls(ServerHandshake handshake) throws IOException {
        if (in.hasRemaining()) {
            // proto.md: the client waits for the ACK; plain bytes after STARTTLS are not part of any TLS session.
            throw new NbdProtocolException("client sent " + in.remaining() + " bytes after NBD_OPT_STARTTLS "
                    + "without waiting for its reply");
        }
        try {
            transport = TlsTransport.start(transport, tls.credentials().serverEngine());
        } catch (TlsTransport.TlsHandshakeException e) {
            LOG.warn("nbd conn={} closing: {}", id, e.getMessage());
            return false;
        }
        handshake.tlsStarted();
        LOG.debug("nbd conn={} TLS started", id);
        return true;
    }

    private void transmit() throws IOException, InterruptedException {
        writer = new ReplyWriter(id, transport, settings, this::release, Thread.currentThread());
        writerThread = Thread.ofPlatform().name("pcache-nbd-reply-" + id).start(writer);
        RequestValidator validator = new RequestValidator(settings, export.size(),
                export.capabilities().contains(NbdExport.Capability.FAST_ZERO));
        while (true) {
            switch (decoder.state()) {
                case HEADER -> {
                    NbdRequest request = decoder.decodeHeader(in);
                    if (request != null) {
                        requestsRead.setRelease(requestsRead.getPlain() + 1);
                    }
                    if (request == null) {
                        if (!fill()) {
                            endOfStream();
                            return;
                        }
                    } else if (request.command() == NbdCommand.DISC) {
                        // proto.md: handle all outstanding requests, then close; DISC itself has no reply.
                        LOG.debug("nbd conn={} client disconnects", id);
                        return;
                    } else {
                        dispatch(request, validator);
                    }
                }
                case PAYLOAD -> {
                    if (decoder.decodePayload(in)) {
                        ServerRequest write = pendingWrite;
                        pendingWrite = null;
                        execute(write);
                    } else {
                        readPayload();
                    }
                }
                case DISCARD -> {
                    if (decoder.decodePayload(in)) {
                        ServerRequest refused = pendingRefusal;
                        pendingRefusal = null;
                        reply(refused);
                    } else if (!fill()) {
                        throw new NbdProtocolException("connection closed inside a write payload");
                    }
                }
                case FAILED -> throw new IllegalStateException("decoder failed without an exception");
            }
        }
    }

    private void endOfStream() throws NbdProtocolException {
        if (in.hasRemaining()) {
            // conn_recv_full's rule: EOF on a message boundary is a hang-up, EOF inside one an error.
            throw new NbdProtocolException("connection closed inside a request header (" + in.remaining()
                    + " bytes)");
        }
        LOG.debug("nbd conn={} client hung up{}", id, stopping() ? " (server stopping)" : "");
    }

    /** Reads payload bytes straight into the request's buffer once the input buffer is used up. */
    private void readPayload() throws IOException {
        writer.flushReaderReplies();
        ByteBuffer destination = decoder.payloadDestination();
        if (transport.read(destination) < 0) {
            throw new NbdProtocolException("connection closed inside a write payload");
        }
    }

    private void dispatch(NbdRequest request, RequestValidator validator) throws InterruptedException {
        RequestValidator.Rejection rejection = state.get() == State.STOPPED_TRANSMITTING
                // proto.md: requests received during a server shutdown SHOULD get NBD_ESHUTDOWN.
                ? new RequestValidator.Rejection(NbdError.ESHUTDOWN, "the server is shutting down; disconnect")
                : validator.validate(request);
        if (rejection != null) {
            LOG.debug("nbd conn={} refused {}: {} {}", id, request, rejection.error(), rejection.message());
            admit(0);
            ServerRequest refused = new ServerRequest(this, request, 0).reject(rejection.error(), rejection.message());
            if (request.command() == NbdCommand.WRITE && request.length() > 0) {
                // The reply waits for the end of the payload, as nbdkit's does: a client reading replies while it
                // still sends never sees the answer to a write it has not finished sending.
                decoder.discardPayload(request.length());
                pendingRefusal = refused;
            } else {
                reply(refused);
            }
            return;
        }
        NbdCommand command = request.command();
        long bytes = command == NbdCommand.READ || command == NbdCommand.WRITE ? request.length() : 0;
        admit(bytes);
        ServerRequest inFlight = new ServerRequest(this, request, bytes);
        if (bytes > 0) {
            inFlight.buffer(pool.acquire((int) bytes));
        }
        if (command == NbdCommand.WRITE) {
            decoder.payloadInto(inFlight.buffer().byteBuffer());
            pendingWrite = inFlight;
        } else {
            execute(inFlight);
        }
    }

    /** Takes a place in the window, first sending this thread's replies if it has to wait for one. */
    private void admit(long bytes) throws InterruptedException {
        if (!window.tryAcquire(bytes)) {
            writer.flushReaderReplies();
            window.acquire(bytes);
        }
    }

    private void execute(ServerRequest inFlight) {
        NbdRequest request = inFlight.request();
        long offset = request.offset();
        long length = request.length();
        Durability durability = request.hasFlag(NbdProtocol.CMD_FLAG_FUA) ? Durability.FUA : Durability.BUFFERED;
        CompletableFuture<?> future;
        inFlight.executing(System.nanoTime());
        try {
            future = switch (request.command()) {
                case READ -> blockSizes.read(offset, inFlight.buffer().segment());
                case WRITE -> blockSizes.write(offset, inFlight.buffer().segment(), durability);
                case FLUSH -> export.flush();
                case TRIM -> blockSizes.trim(offset, length, durability);
                case WRITE_ZEROES -> blockSizes.writeZeroes(offset, length, durability);
                case CACHE -> blockSizes.cache(offset, length);
                case BLOCK_STATUS -> blockSizes.blockStatus(offset, length);
                case DISC -> throw new IllegalStateException("DISC is not executed");
            };
        } catch (RuntimeException e) {
            future = CompletableFuture.failedFuture(e);
        }
        future.whenComplete(inFlight);
    }

    /** A request handed to the export at {@code startNanos} ({@link System#nanoTime()}) completed now. */
    void executed(NbdRequest request, long startNanos) {
        statistics.record(request.command(), System.nanoTime() - startNanos);
    }

    /** The error code for a failed request; the real cause goes to the DEBUG log first. */
    NbdError mapFailure(NbdRequest request, Throwable failure) {
        NbdError error = ErrorTranslation.of(failure, request.flags());
        LOG.debug("nbd conn={} {} failed, replying {}", id, request, error, failure);
        return error;
    }

    void reply(ServerRequest request) {
        writer.submit(request);
    }

    private void release(ServerRequest request) {
        if (request.buffer() != null) {
            pool.release(request.buffer());
        }
        window.release(request.windowBytes());
    }

    private boolean fill() throws IOException {
        if (writer != null) {
            writer.flushReaderReplies();
        }
        in.compact();
        try {
            return transport.read(in) >= 0;
        } finally {
            in.flip();
        }
    }

    private void send(ByteBuffer out) throws IOException {
        transport.write(out);
    }

    private void finish() {
        if (writer != null) {
            writer.flushReaderReplies();
            if (pendingWrite != null) {
                // A write whose payload never fully arrived: nothing was written, only its resources go back.
                release(pendingWrite);
                pendingWrite = null;
            }
            if (pendingRefusal != null) {
                release(pendingRefusal);
                pendingRefusal = null;
            }
            drain();
        }
        closeQuietly();
        state.set(State.CLOSED);
        onClosed.run();
        LOG.debug("nbd conn={} closed", id);
    }

    /** Waits for requests in flight to be answered, then lets the writer finish. */
    private void drain() {
        long timeoutMillis = options.drainTimeout().toMillis();
        try {
            if (!window.awaitEmpty(timeoutMillis, TimeUnit.MILLISECONDS)) {
                LOG.warn("nbd conn={} closing with {} requests still in flight after {} ms", id, window.requests(),
                        timeoutMillis);
                closeQuietly();
            }
            writer.close();
            writerThread.join(timeoutMillis);
            if (writerThread.isAlive()) {
                // A client that stopped reading blocks the writer; closing the transport releases it.
                closeQuietly();
                writerThread.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            closeQuietly();
            writer.close();
        }
    }

    private void closeQuietly() {
        try {
            transport.close();
        } catch (IOException e) {
            LOG.debug("nbd conn={} close: {}", id, e.toString());
        }
    }
}
