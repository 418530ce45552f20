package org.pcache.nbd;

import java.io.IOException;
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
 * <p>Errors reach the callback as {@link BackingIoException}: OUT_OF_RANGE and MISALIGNED for requests
 * refused before sending, IO_ERROR for errors the server reports and for a lost or closed connection (the
 * cause says which).
 *
 * <p>Threading: any thread may submit; callbacks run on the client's reader thread.
 */
public final class NbdEngine implements IoEngine {

    private static final Logger LOG = LoggerFactory.getLogger(NbdEngine.class);

    private final NbdClient client;

    private NbdEngine(NbdClient client) {
        this.client = client;
        if (!client.has(NbdProtocol.FLAG_SEND_FLUSH)) {
            LOG.warn("nbd backing uri={} does not advertise flush: writes may not be durable", client.uri());
        }
    }

    /** Parses {@code uri} (see {@link NbdUri}) and connects. */
    public static NbdEngine open(String uri) throws IOException {
        return new NbdEngine(NbdClient.connect(NbdUri.parse(uri)));
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
            split("read", offset, dst, done, (at, part) -> client.read(at, part));
        }
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        if (check("write", offset, src.byteSize(), done)) {
            split("write", offset, src, done, (at, part) -> client.write(at, part, Durability.BUFFERED));
        }
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

    /** One NBD request per piece of at most the server's maximum block size; {@code done} runs once. */
    private void split(String operation, long offset, MemorySegment memory, IoCallback done, Part part) {
        long length = memory.byteSize();
        int maximum = client.maximumBlockSize() - client.maximumBlockSize() % client.minimumBlockSize();
        int pieces = (int) ((length + maximum - 1) / maximum);
        AtomicInteger left = new AtomicInteger(pieces);
        AtomicReference<IOException> firstError = new AtomicReference<>();
        for (long at = 0; at < length; at += maximum) {
            long pieceLength = Math.min(maximum, length - at);
            CompletableFuture<Void> future;
            try {
                future = part.submit(offset + at, memory.asSlice(at, pieceLength));
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

    @FunctionalInterface
    private interface Part {
        CompletableFuture<Void> submit(long offset, MemorySegment memory);
    }
}
