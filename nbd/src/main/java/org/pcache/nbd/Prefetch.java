package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.function.BiConsumer;
import org.pcache.cache.Pcache;

/**
 * One CACHE request: walks its range through the cache one buffer-sized piece at a time into a borrowed scratch
 * buffer, which leaves every missed piece in the cache as clean keys (as any read miss does), and completes when the
 * last piece arrived. Each piece starts when the previous one ended; the request is its own completion callback, so a
 * piece allocates no lambda.
 *
 * <p>Invariant: the buffer goes back to its {@link PrefetchBuffers} before the request completes, success or failure,
 * so a client that sends the next hint after the reply always finds it free.
 *
 * <p>Threading: started on a connection's reader thread, continued on whichever thread completes each piece; one
 * piece is in flight at a time, so the position has one writer at a time.
 */
final class Prefetch implements BiConsumer<Void, Throwable> {

    private final Pcache cache;
    private final PrefetchBuffers buffers;
    private final MemorySegment buffer;
    private final long end;
    private final CompletableFuture<Void> done = new CompletableFuture<>();
    private long position;

    Prefetch(Pcache cache, PrefetchBuffers buffers, MemorySegment buffer, long start, long end) {
        this.cache = cache;
        this.buffers = buffers;
        this.buffer = buffer;
        this.position = start;
        this.end = end;
    }

    CompletableFuture<Void> start() {
        next();
        return done;
    }

    private void next() {
        if (position == end) {
            buffers.giveBack(buffer);
            done.complete(null);
            return;
        }
        long piece = Math.min(PrefetchBuffers.SIZE, end - position);
        long at = position;
        position += piece;
        cache.readAsync(at, buffer.asSlice(0, piece)).whenComplete(this);
    }

    /** Completion of one piece. */
    @Override
    public void accept(Void ignored, Throwable failure) {
        if (failure != null) {
            buffers.giveBack(buffer);
            done.completeExceptionally(failure);
        } else {
            next();
        }
    }
}
