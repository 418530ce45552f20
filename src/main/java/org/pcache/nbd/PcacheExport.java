package org.pcache.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.EnumSet;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import org.pcache.cache.Pcache;

/**
 * The cache as an NBD export: every NBD command becomes a call on the public {@link Pcache} API.
 *
 * <table>
 * <caption>Command mapping</caption>
 * <tr><th>NBD</th><th>cache</th></tr>
 * <tr><td>READ</td><td>{@link Pcache#readAsync}</td></tr>
 * <tr><td>WRITE (+FUA)</td><td>{@link Pcache#writeAsync} with {@code Durability.FUA} when the flag is set</td></tr>
 * <tr><td>FLUSH</td><td>{@link Pcache#flushAsync}: closes every kset, so it covers writes completed on any
 *     connection (multi-conn holds)</td></tr>
 * <tr><td>TRIM</td><td>{@link Pcache#discardAsync} (advisory: the data stays readable)</td></tr>
 * <tr><td>WRITE_ZEROES</td><td>{@link Pcache#writeZeroesAsync}: zeroes are written as data, so FAST_ZERO is not
 *     offered and the server answers it with ENOTSUP</td></tr>
 * <tr><td>CACHE</td><td>a read into a scratch buffer, so missed ranges become clean cache keys; see
 *     {@link #cache}</td></tr>
 * <tr><td>BLOCK_STATUS</td><td>everything is data (the interface's default)</td></tr>
 * </table>
 *
 * <p>Errors: the cache fails a request with an {@code IOException} ({@code CacheIoException} for a data CRC
 * mismatch, {@code BackingIoException} for a failed miss read), which {@link NbdError#of} sends as EIO; a request
 * arriving after the cache closed gets ESHUTDOWN. Range errors cannot happen: the server validates first.
 *
 * <p>Threading: called concurrently from every connection's reader thread; the cache is thread-safe, and the
 * prefetch buffers are handed out through a concurrent queue. {@link #close} frees them once no request is in
 * flight (after the server stopped).
 */
public final class PcacheExport implements NbdExport, AutoCloseable {

    /** Size of one prefetch buffer: a CACHE request is read through the cache in pieces of this many bytes. */
    static final int PREFETCH_PIECE = 1 << 20;
    /** CACHE requests prefetching at once, export-wide; a hint arriving while all are busy is acknowledged only. */
    static final int PREFETCH_BUFFERS = 4;

    private static final Set<Capability> CAPABILITIES = EnumSet.of(Capability.FLUSH, Capability.FUA,
            Capability.TRIM, Capability.WRITE_ZEROES, Capability.CACHE, Capability.MULTI_CONN);

    private final Pcache cache;
    private final String name;
    private final String description;
    private final Arena arena = Arena.ofShared();
    private final BlockingQueue<MemorySegment> prefetchBuffers = new ArrayBlockingQueue<>(PREFETCH_BUFFERS);

    /**
     * Exports {@code cache} as {@code name}. The cache must be open for as long as a server serves this export;
     * it stays the caller's to close.
     */
    public PcacheExport(Pcache cache, String name, String description) {
        if (cache.size() % NbdProtocol.MIN_BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("cache size " + cache.size() + " is not a multiple of "
                    + NbdProtocol.MIN_BLOCK_SIZE);
        }
        this.cache = cache;
        this.name = name;
        this.description = description;
        for (int i = 0; i < PREFETCH_BUFFERS; i++) {
            prefetchBuffers.add(arena.allocate(PREFETCH_PIECE, NbdProtocol.MIN_BLOCK_SIZE));
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String description() {
        return description;
    }

    @Override
    public long size() {
        return cache.size();
    }

    @Override
    public Set<Capability> capabilities() {
        return CAPABILITIES;
    }

    @Override
    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        try {
            return cache.readAsync(offset, dst);
        } catch (IllegalStateException e) {
            return closed(e);
        }
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        try {
            return cache.writeAsync(offset, src, cacheDurability(durability));
        } catch (IllegalStateException e) {
            return closed(e);
        }
    }

    @Override
    public CompletableFuture<Void> flush() {
        try {
            return cache.flushAsync();
        } catch (IllegalStateException e) {
            return closed(e);
        }
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        try {
            return cache.discardAsync(offset, length, cacheDurability(durability));
        } catch (IllegalStateException e) {
            return closed(e);
        }
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        try {
            return cache.writeZeroesAsync(offset, length, cacheDurability(durability));
        } catch (IllegalStateException e) {
            return closed(e);
        }
    }

    /**
     * Prefetch: reads the range through the cache piece by piece into a scratch buffer, which leaves every missed
     * piece in the cache as clean keys (as any read miss does), and completes when the last piece arrived. CACHE is
     * a hint (proto.md), so when all {@value #PREFETCH_BUFFERS} buffers are busy the request succeeds at once
     * without prefetching; memory stays bounded and no reader thread ever waits for a buffer.
     */
    @Override
    public CompletableFuture<Void> cache(long offset, long length) {
        MemorySegment buffer = prefetchBuffers.poll();
        if (buffer == null) {
            return CompletableFuture.completedFuture(null);
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        new Prefetch(offset, offset + length, buffer, done).next();
        return done;
    }

    /** Frees the prefetch buffers; call after the server serving this export stopped. */
    @Override
    public void close() {
        arena.close();
    }

    /**
     * One CACHE request walking its range one piece at a time; each piece starts when the previous one ended. The
     * buffer goes back to the pool before the request completes, so a client that sends the next hint after the
     * reply always finds it free.
     */
    private final class Prefetch {
        private final long end;
        private final MemorySegment buffer;
        private final CompletableFuture<Void> done;
        private long position;

        Prefetch(long start, long end, MemorySegment buffer, CompletableFuture<Void> done) {
            this.position = start;
            this.end = end;
            this.buffer = buffer;
            this.done = done;
        }

        void next() {
            if (position == end) {
                prefetchBuffers.add(buffer);
                done.complete(null);
                return;
            }
            long piece = Math.min(PREFETCH_PIECE, end - position);
            long at = position;
            position += piece;
            read(at, buffer.asSlice(0, piece)).whenComplete((ignored, failure) -> {
                if (failure != null) {
                    prefetchBuffers.add(buffer);
                    done.completeExceptionally(failure);
                } else {
                    next();
                }
            });
        }
    }

    private static org.pcache.cache.Durability cacheDurability(Durability durability) {
        return switch (durability) {
            case BUFFERED -> org.pcache.cache.Durability.BUFFERED;
            case FUA -> org.pcache.cache.Durability.FUA;
        };
    }

    /**
     * The answer to a request made after the cache closed: the cache throws {@link IllegalStateException} at once,
     * and the client should hear ESHUTDOWN rather than the EIO an unknown failure gives.
     */
    private static CompletableFuture<Void> closed(IllegalStateException e) {
        return CompletableFuture.failedFuture(new NbdErrorException(NbdError.ESHUTDOWN, e.getMessage()));
    }
}
