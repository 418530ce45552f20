package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.pcache.backing.BackingConnection;
import org.pcache.backing.BackingExtent;
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
 * <p>Reconnect: the engine keeps its server through an {@link NbdLink}. When the connection breaks, requests in
 * flight fail, {@link #connection()} turns DISCONNECTED with the reason, every new request fails at once with
 * "disconnected" and the reason, and the link connects again in the background; once the same export is back, requests
 * go to the new connection. Callers retry (writeback does, with its own back-off).
 *
 * <p>Threading: any thread may submit; callbacks run on the client's reader thread.
 */
public final class NbdEngine implements IoEngine {

    private static final Logger LOG = LoggerFactory.getLogger(NbdEngine.class);

    /** Largest zero buffer an engine keeps for servers without write-zeroes. */
    private static final int ZERO_CHUNK = 1 << 20;

    private final NbdLink link;
    private final long size;
    private final int minimumBlockSize;
    /** Zero blocks to write when the server cannot zero a range itself, made when first needed; guarded by this. */
    private MemorySegment zeroes;

    private NbdEngine(NbdClient client, NbdLink.Connector connector) throws IOException {
        this.link = new NbdLink(client, connector);
        this.size = client.size();
        this.minimumBlockSize = client.minimumBlockSize();
        if (!client.has(NbdProtocol.FLAG_SEND_FLUSH)) {
            LOG.warn("nbd backing uri={} does not advertise flush: writes may not be durable", client.uri());
        }
    }

    /** Parses {@code uri} (see {@link NbdUri}) and connects, with the default timeouts. */
    public static NbdEngine open(String uri) throws IOException {
        return open(NbdUri.parse(uri));
    }

    /** Connects to {@code uri} (over TLS for an {@code nbds} URI), with the default timeouts. */
    public static NbdEngine open(NbdUri uri) throws IOException {
        return open(uri, NbdClient.Options.defaults());
    }

    /** Connects to {@code uri}, and again with the same {@code options} whenever the connection breaks. */
    public static NbdEngine open(NbdUri uri, NbdClient.Options options) throws IOException {
        return new NbdEngine(NbdClient.connect(uri, options), () -> NbdClient.connect(uri, options));
    }

    /**
     * An engine on an already connected client; closing the engine closes the client. It reconnects to the client's
     * URI with the default timeouts.
     */
    public static NbdEngine of(NbdClient client) throws IOException {
        return new NbdEngine(client, () -> NbdClient.connect(client.uri()));
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int alignment() {
        return minimumBlockSize;
    }

    /** Whether the server advertised NBD_FLAG_READ_ONLY: every write-type request would fail with EPERM. */
    public boolean readOnly() {
        return link.any().has(NbdProtocol.FLAG_READ_ONLY);
    }

    /** Connections open to the server: {@value NbdLink#MULTI_CONN} when it advertises multi-conn, else 1. */
    public int connections() {
        return link.connections();
    }

    @Override
    public BackingConnection connection() {
        return link.connection();
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        NbdClient client = check("read", offset, dst.byteSize(), done);
        if (client != null) {
            split(client, "read", offset, dst.byteSize(), maximumPiece(client), done,
                    (at, length) -> client.read(offset + at, dst.asSlice(at, length)));
        }
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        NbdClient client = check("write", offset, src.byteSize(), done);
        if (client != null) {
            split(client, "write", offset, src.byteSize(), maximumPiece(client), done,
                    (at, length) -> client.write(offset + at, src.asSlice(at, length), Durability.BUFFERED));
        }
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        NbdClient client = check("discard", offset, length, done);
        if (client == null) {
            return;
        }
        if (!client.has(NbdProtocol.FLAG_SEND_TRIM)) {
            done.completed(null);
            return;
        }
        split(client, "discard", offset, length, maximumPiece(client), done,
                (at, pieceLength) -> client.trim(offset + at, pieceLength, Durability.BUFFERED));
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        NbdClient client = check("write-zeroes", offset, length, done);
        if (client == null) {
            return;
        }
        if (client.has(NbdProtocol.FLAG_SEND_WRITE_ZEROES)) {
            split(client, "write-zeroes", offset, length, maximumPiece(client), done,
                    (at, pieceLength) -> client.writeZeroes(offset + at, pieceLength, Durability.BUFFERED));
        } else {
            MemorySegment zeroBlocks = zeroes(client);
            split(client, "write-zeroes", offset, length,
                    Math.min(zeroBlocks.byteSize(), maximumPiece(client)), done, (at, pieceLength) ->
                    client.write(offset + at, zeroBlocks.asSlice(0, pieceLength), Durability.BUFFERED));
        }
    }

    /**
     * The server's own NBD_CMD_BLOCK_STATUS with base:allocation when it agreed to the context (a HOLE descriptor is a
     * hole; ZERO alone and DATA are data), at most 32 MiB per call; the default (all data) otherwise, and while
     * disconnected: data is always a true answer, and a client's block status need not fail for it.
     */
    @Override
    public void allocation(long offset, long length, AllocationCallback done) {
        BackingIoException invalid = invalid("allocation", offset, length);
        if (invalid != null) {
            done.completed(null, invalid);
            return;
        }
        NbdClient client = link.client();
        if (client == null || !client.hasBaseAllocation()) {
            IoEngine.super.allocation(offset, length, done);
            return;
        }
        long asked = Math.min(length, NbdProtocol.MAX_PAYLOAD_LENGTH);
        CompletableFuture<List<NbdExport.Extent>> status;
        try {
            status = client.blockStatus(offset, asked);
        } catch (RuntimeException e) {
            status = CompletableFuture.failedFuture(e);
        }
        status.whenComplete((extents, failure) -> {
            if (failure != null) {
                done.completed(null, translate(client, "allocation", offset, asked, failure));
                return;
            }
            List<BackingExtent> runs = new ArrayList<>(extents.size());
            for (NbdExport.Extent extent : extents) {
                BackingExtent.Kind kind = extent.allocation() == NbdExport.Allocation.HOLE ? BackingExtent.Kind.HOLE
                        : BackingExtent.Kind.DATA;
                if (!runs.isEmpty() && runs.getLast().kind() == kind) {
                    runs.set(runs.size() - 1, new BackingExtent(runs.getLast().length() + extent.length(), kind));
                } else {
                    runs.add(new BackingExtent(extent.length(), kind));
                }
            }
            done.completed(runs, null);
        });
    }

    /** Whether the server advertised NBD_FLAG_SEND_TRIM. */
    @Override
    public boolean supportsDiscard() {
        return link.any().has(NbdProtocol.FLAG_SEND_TRIM);
    }

    /** Whether the server advertised NBD_FLAG_SEND_WRITE_ZEROES. */
    @Override
    public boolean supportsWriteZeroes() {
        return link.any().has(NbdProtocol.FLAG_SEND_WRITE_ZEROES);
    }

    @Override
    public void flush(IoCallback done) {
        NbdClient client = connected("flush", 0, 0, done);
        if (client == null) {
            return;
        }
        if (!client.has(NbdProtocol.FLAG_SEND_FLUSH)) {
            done.completed(null);
            return;
        }
        client.flush().whenComplete((ignored, failure) -> done.completed(failure == null ? null
                : translate(client, "flush", 0, 0, failure)));
    }

    @Override
    public void close() throws IOException {
        link.close();
    }

    /** The client to send a valid request on, or null when {@code done} was already given the error. */
    private NbdClient check(String operation, long offset, long length, IoCallback done) {
        BackingIoException invalid = invalid(operation, offset, length);
        if (invalid != null) {
            done.completed(invalid);
            return null;
        }
        return connected(operation, offset, length, done);
    }

    /** Why the range cannot be sent (outside the export, misaligned), or null. */
    private BackingIoException invalid(String operation, long offset, long length) {
        BackingIoException.Reason reason = null;
        if (offset < 0 || length <= 0 || offset > size - length) {
            reason = BackingIoException.Reason.OUT_OF_RANGE;
        } else if (offset % minimumBlockSize != 0 || length % minimumBlockSize != 0) {
            reason = BackingIoException.Reason.MISALIGNED;
        }
        return reason == null ? null : new BackingIoException(reason, operation, offset, length, "export of " + size
                + " bytes, block size " + minimumBlockSize, null);
    }

    /** The client in use, or null (and {@code done} given the error) while the link is disconnected. */
    private NbdClient connected(String operation, long offset, long length, IoCallback done) {
        NbdClient client = link.client();
        if (client == null) {
            done.completed(new BackingIoException(BackingIoException.Reason.IO_ERROR, operation, offset, length,
                    "nbd " + link.uri() + ": disconnected, reconnecting (" + link.connection().lastError() + ")",
                    null));
        }
        return client;
    }

    /** The server's maximum block size, rounded down to its minimum: the largest piece of one request. */
    private int maximumPiece(NbdClient client) {
        return client.maximumBlockSize() - client.maximumBlockSize() % minimumBlockSize;
    }

    /** The zero blocks written for write-zeroes on a server without it. */
    private synchronized MemorySegment zeroes(NbdClient client) {
        if (zeroes == null) {
            zeroes = Arena.ofAuto().allocate(Math.min(maximumPiece(client), Math.max(minimumBlockSize,
                    ZERO_CHUNK - ZERO_CHUNK % minimumBlockSize)));
        }
        return zeroes;
    }

    /**
     * One NBD request per piece of at most {@code maximum} bytes (a multiple of the minimum block size) of
     * {@code [offset, offset + length)}; {@code done} runs once.
     */
    private void split(NbdClient client, String operation, long offset, long length, long maximum, IoCallback done, Part part) {
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
                    firstError.compareAndSet(null, translate(client, operation, offset, length, failure));
                }
                if (left.decrementAndGet() == 0) {
                    done.completed(firstError.get());
                }
            });
        }
    }

    private static BackingIoException translate(NbdClient client, String operation, long offset, long length, Throwable failure) {
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
