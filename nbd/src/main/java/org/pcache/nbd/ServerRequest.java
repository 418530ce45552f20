package org.pcache.nbd;

import java.util.List;
import java.util.function.BiConsumer;

/**
 * One request a connection has read and not yet answered: the decoded header, its buffer, when the export was
 * called, and once the export finishes, the outcome the reply writer encodes. It is its own completion callback
 * (which also times the request), so the data path allocates no lambda per request.
 *
 * <p>Threading: filled by the reader thread, completed on whatever thread completes the export's future,
 * then handed to the reply writer; each field is written before that hand-off and read after it.
 */
final class ServerRequest implements BiConsumer<Object, Throwable> {

    private final NbdConnection connection;
    private final NbdRequest request;
    /** Bytes counted against the connection's window. */
    private final long windowBytes;
    /** When the export was called ({@link System#nanoTime()}). */
    private long startNanos;
    private BufferPool.Buffer buffer;
    private List<NbdExport.Extent> extents;
    private NbdError error;
    private String message;

    ServerRequest(NbdConnection connection, NbdRequest request, long windowBytes) {
        this.connection = connection;
        this.request = request;
        this.windowBytes = windowBytes;
    }

    NbdRequest request() {
        return request;
    }

    long windowBytes() {
        return windowBytes;
    }

    BufferPool.Buffer buffer() {
        return buffer;
    }

    void buffer(BufferPool.Buffer buffer) {
        this.buffer = buffer;
    }

    List<NbdExport.Extent> extents() {
        return extents;
    }

    /** Null on success. */
    NbdError error() {
        return error;
    }

    String message() {
        return message;
    }

    /** The export is being called now, at {@code nanos}. */
    void executing(long nanos) {
        startNanos = nanos;
    }

    /** Records a refusal decided before the export was called. */
    ServerRequest reject(NbdError error, String message) {
        this.error = error;
        this.message = message;
        return this;
    }

    /** Completion of the export's future. */
    @Override
    @SuppressWarnings("unchecked")
    public void accept(Object result, Throwable failure) {
        connection.executed(request, startNanos);
        if (failure != null) {
            error = connection.mapFailure(request, failure);
            message = String.valueOf(failure.getMessage());
        } else if (request.command() == NbdCommand.BLOCK_STATUS) {
            extents = (List<NbdExport.Extent>) result;
        }
        connection.reply(this);
    }
}
