package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.IoEngine;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A backing store reached over NBD: an {@link IoEngine} on an {@link NbdClient}, opened from a URI such as
 * {@code nbd://host:10809/export} or {@code nbd+unix:///export?socket=/run/nbd.sock}. Requests longer than
 * the server's maximum block size are split and run together; a request completes once, with the first
 * error. Flush is a no-op on a server that does not advertise NBD_FLAG_SEND_FLUSH (it then has no volatile
 * cache to flush, or cannot make writes durable at all, which the log says at open).
 *
 * <p>Discard is NBD_CMD_TRIM and write-zeroes NBD_CMD_WRITE_ZEROES when the server advertises them
 * (NBD_FLAG_SEND_TRIM, NBD_FLAG_SEND_WRITE_ZEROES), split like writes and durable after a flush like them. Without
 * them, discard does nothing and write-zeroes writes zero blocks from one shared zero buffer.
 *
 * <p>Errors reach the callback as {@link BackingIoException}: OUT_OF_RANGE and MISALIGNED for requests
 * refused before sending, IO_ERROR for errors the server reports and for a lost or closed connection (the
 * cause says which).
 *
 * <p>Threading: any thread may submit; callbacks run on the client's reader thread.
 */
public final class NbdEngine implements IoEngine {

    private static final Logger LOG = LoggerFactory.getLogger(NbdEngine.class);

    /** Largest zero buffer an engine keeps for servers without write-zeroes. */
    private static final int ZERO_CHUNK = 1 << 20;

    private final NbdClient client;
    /** Zero blocks to write when the server cannot zero a range itself; null when it can. */
    private final MemorySegment zeroes;

    private NbdEngine(NbdClient client) {
        this.client = client;
        this.zeroes = client.has(NbdProtocol.FLAG_SEND_WRITE_ZEROES) ? null
                : Arena.ofAuto().allocate(Math.min(maximumPiece(), Math.max(client.minimumBlockSize(),
                        ZERO_CHUNK - ZERO_CHUNK % client.minimumBlockSize())));
        if (!client.has(NbdProtocol.FLAG_SEND_FLUSH)) {
            LOG.warn("nbd backing uri={} does not advertise flush: writes may not be durable", client.uri());
        }
    }

    /** Parses {@code uri} (see {@link NbdUri}) and connects. */
    public static NbdEngine open(String uri) throws IOException {
        return open(NbdUri.parse(uri));
    }

    /** Connects to {@code uri} (over TLS for an {@code nbds} URI). */
    public static NbdEngine open(NbdUri uri) throws IOException {
        return new NbdEngine(NbdClient.connect(uri));
    }

    /** An engine on an already connected client; closing the engine closes the client. */
    public static NbdEngine of(NbdClient client) {
        return new NbdEngine(client);
    }

    @Override
    public long size() {
        return client.size();
    }

    @Override
    public int alignment() {
        return client.minimumBlockSize();
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        if (check("read", offset, dst.byteSize(), done)) {
            split("read", offset, dst.byteSize(), maximumPiece(), done,
                    (at, length) -> client.read(offset + at, dst.asSlice(at, length)));
        }
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        if (check("write", offset, src.byteSize(), done)) {
            split("write", offset, src.byteSize(), maximumPiece(), done,
                    (at, length) -> client.write(offset + at, src.asSlice(at, length), Durability.BUFFERED));
        }
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        if (!check("discard", offset, length, done)) {
            return;
        }
        if (!supportsDiscard()) {
            done.completed(null);
            return;
        }
        split("discard", offset, length, maximumPiece(), done,
                (at, pieceLength) -> client.trim(offset + at, pieceLength, Durability.BUFFERED));
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        if (!check("write-zeroes", offset, length, done)) {
            return;
        }
        if (zeroes == null) {
            split("write-zeroes", offset, length, maximumPiece(), done,
                    (at, pieceLength) -> client.writeZeroes(offset + at, pieceLength, Durability.BUFFERED));
        } else {
            split("write-zeroes", offset, length, zeroes.byteSize(), done, (at, pieceLength) ->
                    client.write(offset + at, zeroes.asSlice(0, pieceLength), Durability.BUFFERED));
        }
    }

    /** Whether the server advertised NBD_FLAG_SEND_TRIM. */
    @Override
    public boolean supportsDiscard() {
        return client.has(NbdProtocol.FLAG_SEND_TRIM);
    }

    /** Whether the server advertised NBD_FLAG_SEND_WRITE_ZEROES. */
    @Override
    public boolean supportsWriteZeroes() {
        return zeroes == null;
    }

    @Override
    public void flush(IoCallback done) {
        if (!client.has(NbdProtocol.FLAG_SEND_FLUSH)) {
            done.completed(null);
            return;
        }
        client.flush().whenComplete((ignored, failure) -> done.completed(failure == null ? null
                : translate("flush", 0, 0, failure)));
    }

    @Override
    public void close() throws IOException {
        client.close();
    }

    private boolean check(String operation, long offset, long length, IoCallback done) {
        BackingIoException.Reason reason = null;
        if (offset < 0 || length <= 0 || offset > client.size() - length) {
            reason = BackingIoException.Reason.OUT_OF_RANGE;
        } else if (offset % client.minimumBlockSize() != 0 || length % client.minimumBlockSize() != 0) {
            reason = BackingIoException.Reason.MISALIGNED;
        }
        if (reason != null) {
            done.completed(new BackingIoException(reason, operation, offset, length, "export of " + client.size()
                    + " bytes, block size " + client.minimumBlockSize(), null));
            return false;
        }
        return true;
    }

    /** The server's maximum block size, rounded down to its minimum: the largest piece of one request. */
    private int maximumPiece() {
        return client.maximumBlockSize() - client.maximumBlockSize() % client.minimumBlockSize();
    }

    /**
     * One NBD request per piece of at most {@code maximum} bytes (a multiple of the minimum block size) of
     * {@code [offset, offset + length)}; {@code done} runs once.
     */
    private void split(String operation, long offset, long length, long maximum, IoCallback done, Part part) {
        int pieces = (int) ((length + maximum - 1) / maximum);
        AtomicInteger left = new AtomicInteger(pieces);
        AtomicReference<IOException> firstError = new AtomicReference<>();
        for (long at = 0; at < length; at += maximum) {
            long pieceLength = Math.min(maximum, length - at);
            CompletableFuture<Void> future;
            try {
                future = part.submit(at, pieceLength);
            } catch (RuntimeException e) {
                future = CompletableFuture.failedFuture(e);
            }
            future.whenComplete((ignored, failure) -> {
                if (failure != null) {
                    firstError.compareAndSet(null, translate(operation, offset, length, failure));
                }
                if (left.decrementAndGet() == 0) {
                    done.completed(firstError.get());
                }
            });
        }
    }

    private BackingIoException translate(String operation, long offset, long length, Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                ? failure.getCause() : failure;
        BackingIoException.Reason reason = cause instanceof IllegalArgumentException
                ? BackingIoException.Reason.OUT_OF_RANGE
                : BackingIoException.Reason.IO_ERROR;
        return new BackingIoException(reason, operation, offset, length, "nbd " + client.uri() + ": "
                + cause.getMessage(), cause);
    }

    /** Sends the piece of {@code length} bytes that starts {@code at} bytes into the request. */
    @FunctionalInterface
    private interface Part {
        CompletableFuture<Void> submit(long at, long length);
    }
}
