package org.pcache.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one writer of a connection's replies: completions queue their request from any thread; the writer
 * thread takes the whole queue at once and sends it with gathering writes through the connection's
 * {@link NbdTransport} (headers from one buffer, read data straight from the request buffers), so replies are never interleaved and a burst costs few system calls.
 * Replies go out in completion order, which proto.md allows to differ from request order.
 *
 * <p>Shortcut: replies completed on the connection's reader thread (an export that answers at once) are
 * collected and sent by that thread itself, in one gathering write, just before it would block
 * ({@link #flushReaderReplies}); that saves waking the writer thread, the largest cost of a queue-depth-1
 * round trip, and still batches pipelined requests. When the writer thread is busy they are queued for it
 * instead. Whoever sends holds the {@code sending} baton, so there is exactly one sender at a time.
 *
 * <p>After a failed write the writer keeps draining without sending, so every request is still released.
 *
 * <p>Threading: {@link #run} is the writer thread's body; {@link #submit} and {@link #close} may be called
 * from any thread; the queue, {@code sending} and {@code closing} are guarded by {@link #lock}; the batch,
 * header buffer and vector belong to whichever thread holds the baton.
 */
final class ReplyWriter implements Runnable {

    private static final Logger LOG = LoggerFactory.getLogger(ReplyWriter.class);
    private static final int HEADER_BUFFER_CAPACITY = 64 * 1024;
    /** Buffers per gathering write: a header and a data buffer per reply. */
    private static final int MAX_VECTOR = 128;

    private final int connectionId;
    private final NbdTransport transport;
    private final TransmissionSettings settings;
    /** Returns a request's buffer and window share once its reply is sent or dropped. */
    private final Consumer<ServerRequest> release;
    /** The connection's reader thread, which may send its own replies when the writer is idle. */
    private final Thread readerThread;
    /** Replies completed on the reader thread and not yet sent; owned by the reader thread. */
    private final ArrayDeque<ServerRequest> readerReplies = new ArrayDeque<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition queued = lock.newCondition();
    /** Guarded by lock. */
    private ArrayDeque<ServerRequest> queue = new ArrayDeque<>();
    /** Guarded by lock. */
    private boolean closing;
    /** A thread is encoding and sending; guarded by lock. */
    private boolean sending;
    // Owned by the thread holding the sending baton.
    private ArrayDeque<ServerRequest> batch = new ArrayDeque<>();
    private final ByteBuffer headers = ByteBuffer.allocateDirect(HEADER_BUFFER_CAPACITY);
    private final ByteBuffer[] vector = new ByteBuffer[MAX_VECTOR];
    private final List<ServerRequest> sent = new ArrayList<>();
    private boolean broken;

    ReplyWriter(int connectionId, NbdTransport transport, TransmissionSettings settings,
                Consumer<ServerRequest> release, Thread readerThread) {
        this.connectionId = connectionId;
        this.transport = transport;
        this.settings = settings;
        this.release = release;
        this.readerThread = readerThread;
    }

    void submit(ServerRequest request) {
        if (Thread.currentThread() == readerThread) {
            readerReplies.addLast(request);
            return;
        }
        boolean accepted;
        lock.lock();
        try {
            accepted = !closing;
            if (accepted) {
                queue.addLast(request);
                queued.signal();
            }
        } finally {
            lock.unlock();
        }
        if (!accepted) {
            release.accept(request);
        }
    }

    /**
     * Sends the replies completed on the reader thread, from the reader thread when nobody else is sending,
     * else through the writer thread. The reader calls this before anything that may block (a socket read, a
     * full request window), so its replies never wait on its own progress.
     */
    void flushReaderReplies() {
        if (readerReplies.isEmpty()) {
            return;
        }
        boolean sendHere;
        lock.lock();
        try {
            sendHere = !sending && queue.isEmpty() && !closing;
            if (sendHere) {
                sending = true;
            } else {
                queue.addAll(readerReplies);
                readerReplies.clear();
                queued.signal();
            }
        } finally {
            lock.unlock();
        }
        if (sendHere) {
            batch.addAll(readerReplies);
            readerReplies.clear();
            sendBatch();
        }
    }

    /**
     * Lets the writer finish what is queued, then exit; later submissions are released unsent. Called by the
     * reader thread after its last {@link #flushReaderReplies}.
     */
    void close() {
        lock.lock();
        try {
            closing = true;
            queued.signal();
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void run() {
        try {
            while (takeBatch()) {
                sendBatch();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Takes the baton and swaps the queue for the (empty) batch, waiting for work and for the reader thread to
     * finish a direct send; false once closing and drained.
     */
    private boolean takeBatch() throws InterruptedException {
        lock.lock();
        try {
            while (queue.isEmpty() || sending) {
                if (closing && queue.isEmpty() && !sending) {
                    return false;
                }
                queued.await();
            }
            ArrayDeque<ServerRequest> full = queue;
            queue = batch;
            batch = full;
            sending = true;
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Gives up the baton; wakes the writer thread only if replies queued up meanwhile or it is waiting to exit. */
    private void passBaton() {
        lock.lock();
        try {
            sending = false;
            if (!queue.isEmpty() || closing) {
                queued.signal();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Sends the batch while holding the baton, and always gives the baton back. */
    private void sendBatch() {
        try {
            writeBatch();
        } catch (RuntimeException e) {
            // A bug, not client input: end this connection, and still release every request of the batch.
            LOG.error("nbd conn={} reply writer failed, closing the connection", connectionId, e);
            broken = true;
            closeTransport();
            releaseBatch();
        } finally {
            passBaton();
        }
    }

    private void writeBatch() {
        headers.clear();
        int count = 0;
        while (!batch.isEmpty()) {
            if (headers.remaining() < ReplyEncoder.MAX_REPLY_HEADER_LENGTH || count + 2 > MAX_VECTOR) {
                send(count);
                headers.clear();
                count = 0;
            }
            ServerRequest request = batch.pollFirst();
            int start = headers.position();
            ByteBuffer data = encode(request);
            vector[count++] = headers.slice(start, headers.position() - start);
            if (data != null) {
                vector[count++] = data;
            }
            sent.add(request);
        }
        send(count);
    }

    /** Encodes the reply header into {@link #headers}; returns the read data that follows it, if any. */
    private ByteBuffer encode(ServerRequest request) {
        NbdRequest header = request.request();
        long handle = header.handle();
        if (request.error() != null) {
            // Errors go in a structured chunk when negotiated, so the client also gets the message.
            if (settings.structuredReplies()) {
                ReplyEncoder.encodeError(headers, handle, request.error(), request.message());
            } else {
                ReplyEncoder.encodeSimple(headers, handle, request.error());
            }
            return null;
        }
        switch (header.command()) {
            case READ -> {
                if (settings.structuredReplies()) {
                    ReplyEncoder.encodeOffsetData(headers, handle, header.offset(), (int) header.length());
                } else {
                    ReplyEncoder.encodeSimple(headers, handle, null);
                }
                return request.buffer().byteBuffer();
            }
            case BLOCK_STATUS -> ReplyEncoder.encodeBlockStatus(headers, handle, ServerHandshake.BASE_ALLOCATION_ID,
                    request.extents(), header.length(), header.hasFlag(NbdProtocol.CMD_FLAG_REQ_ONE));
            default -> ReplyEncoder.encodeSimple(headers, handle, null);
        }
        return null;
    }

    private void send(int count) {
        try {
            if (!broken) {
                transport.write(vector, 0, count);
            }
        } catch (IOException e) {
            // The client is gone or the connection is closing: keep draining so every request is released.
            broken = true;
            LOG.debug("nbd conn={} reply write failed, dropping replies: {}", connectionId, e.toString());
        }
        for (int i = 0; i < count; i++) {
            vector[i] = null;
        }
        for (ServerRequest request : sent) {
            release.accept(request);
        }
        sent.clear();
    }

    /** Releases every request of the batch, sent or not. */
    private void releaseBatch() {
        sent.addAll(batch);
        batch.clear();
        for (ServerRequest request : sent) {
            release.accept(request);
        }
        sent.clear();
    }

    private void closeTransport() {
        try {
            transport.close();
        } catch (IOException e) {
            LOG.debug("nbd conn={} close: {}", connectionId, e.toString());
        }
    }
}
