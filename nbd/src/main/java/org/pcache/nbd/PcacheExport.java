package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import org.pcache.backing.BackingExtent;
import org.pcache.cache.ClientStream;
import org.pcache.cache.Pcache;

/**
 * The cache as an NBD export: maps every NBD command to one call on the public {@link Pcache} API, and does nothing
 * else.
 *
 * <table>
 * <caption>Command mapping</caption>
 * <tr><th>NBD</th><th>cache</th></tr>
 * <tr><td>READ</td><td>{@link Pcache#readAsync}</td></tr>
 * <tr><td>WRITE (+FUA)</td><td>{@link Pcache#writeAsync} with {@code Durability.FUA} when the flag is set</td></tr>
 * <tr><td>FLUSH</td><td>{@link Pcache#flushAsync}: closes every kset, so it covers writes completed on any
 *     connection (multi-conn holds)</td></tr>
 * <tr><td>TRIM</td><td>{@link Pcache#discardAsync} with {@link DiscardPolicy#PASSDOWN} (the range then reads as
 *     zeroes, and writeback discards it on the backing device); nothing with {@link DiscardPolicy#IGNORE}</td></tr>
 * <tr><td>WRITE_ZEROES</td><td>{@link Pcache#writeZeroesAsync}: a record without data, so FAST_ZERO is offered (the
 *     request is as fast as a zeroing can be); NO_HOLE is a hint the cache does not need</td></tr>
 * <tr><td>CACHE</td><td>a {@link Prefetch} into one of the {@link PrefetchBuffers}, so missed ranges become clean
 *     cache keys; see {@link #cache}</td></tr>
 * <tr><td>BLOCK_STATUS</td><td>{@link Pcache#allocationAsync}: the backing device's holes (a sparse file's, an NBD
 *     backing's own block status) as HOLE, everything the cache holds and everything else as DATA</td></tr>
 * </table>
 *
 * <p>Each connection gets its own {@link ClientStream} ({@link #forConnection}), so the cache's sequential cutoff
 * sees each client's runs.
 *
 * <p>What is not here: a failed request's future carries the cache's exception ({@code CacheIoException} for a data
 * CRC mismatch, {@code BackingIoException} for a failed miss read, {@code CacheClosedException} after the cache
 * closed), which the server turns into the NBD error ({@link ErrorTranslation}); the server times every command
 * ({@link RequestStatistics}); range errors cannot happen, since the server validates first.
 *
 * <p>Lifecycle: the cache must be open for as long as a server serves this export, and stays the caller's to close;
 * {@link #close} frees the prefetch buffers, after the server stopped.
 *
 * <p>Threading: called concurrently from every connection's reader thread; the cache is thread-safe and so are the
 * prefetch buffers.
 */
public final class PcacheExport implements NbdExport, AutoCloseable {

    private static final Set<Capability> CAPABILITIES = EnumSet.of(Capability.FLUSH, Capability.FUA,
            Capability.TRIM, Capability.WRITE_ZEROES, Capability.FAST_ZERO, Capability.CACHE, Capability.MULTI_CONN);
    /**
     * Read-only: no write-type command is advertised and the server answers them with EPERM; FLUSH stays (proto.md
     * allows it on a read-only export: it makes nothing newly durable here), and reads still fill the cache.
     */
    private static final Set<Capability> READ_ONLY_CAPABILITIES = EnumSet.of(Capability.READ_ONLY, Capability.FLUSH,
            Capability.CACHE, Capability.MULTI_CONN);

    private final Pcache cache;
    private final String name;
    private final String description;
    private final PrefetchBuffers prefetchBuffers;
    private final Set<Capability> capabilities;
    private final DiscardPolicy discard;

    /** Exports {@code cache} as {@code name}, writable, passing discards down. */
    public PcacheExport(Pcache cache, String name, String description) {
        this(cache, name, description, false, DiscardPolicy.PASSDOWN);
    }

    /** Exports {@code cache} as {@code name}, passing discards down; read-only refuses every write-type command. */
    public PcacheExport(Pcache cache, String name, String description, boolean readOnly) {
        this(cache, name, description, readOnly, DiscardPolicy.PASSDOWN);
    }

    /**
     * Exports {@code cache} as {@code name}; a read-only export refuses every write-type command (EPERM); a TRIM is
     * handled as {@code discard} says.
     */
    public PcacheExport(Pcache cache, String name, String description, boolean readOnly, DiscardPolicy discard) {
        if (cache.size() % BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("cache size " + cache.size() + " is not a multiple of " + BLOCK_SIZE);
        }
        this.cache = cache;
        this.name = name;
        this.description = description;
        this.prefetchBuffers = new PrefetchBuffers();
        this.capabilities = readOnly ? READ_ONLY_CAPABILITIES : CAPABILITIES;
        this.discard = discard;
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
        return capabilities;
    }

    @Override
    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        return cache.readAsync(offset, dst);
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        return cache.writeAsync(offset, src, cacheDurability(durability));
    }

    @Override
    public CompletableFuture<Void> flush() {
        return cache.flushAsync();
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        return switch (discard) {
            case PASSDOWN -> cache.discardAsync(offset, length, cacheDurability(durability));
            case IGNORE -> CompletableFuture.completedFuture(null);
        };
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        return cache.writeZeroesAsync(offset, length, cacheDurability(durability));
    }

    @Override
    public CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
        return cache.allocationAsync(offset, length).thenApply(extents -> {
            List<Extent> mapped = new ArrayList<>(extents.size());
            for (BackingExtent extent : extents) {
                mapped.add(new Extent(extent.length(), switch (extent.kind()) {
                    case DATA -> Allocation.DATA;
                    case HOLE -> Allocation.HOLE;
                }));
            }
            return mapped;
        });
    }

    /**
     * Prefetch: reads the range through the cache into a scratch buffer ({@link Prefetch}). CACHE is a hint
     * (proto.md), so when all {@value PrefetchBuffers#COUNT} buffers are busy the request succeeds at once without
     * prefetching; memory stays bounded and no reader thread ever waits for a buffer.
     */
    @Override
    public CompletableFuture<Void> cache(long offset, long length) {
        MemorySegment buffer = prefetchBuffers.poll();
        if (buffer == null) {
            return CompletableFuture.completedFuture(null);
        }
        return new Prefetch(cache, prefetchBuffers, buffer, offset, offset + length).start();
    }

    /** This export for one connection: its reads and writes are that connection's stream of requests. */
    @Override
    public NbdExport forConnection() {
        return new Connection(cache.openStream());
    }

    /** Frees the prefetch buffers; call after the server serving this export stopped. */
    @Override
    public void close() {
        prefetchBuffers.close();
    }

    private static org.pcache.cache.Durability cacheDurability(Durability durability) {
        return switch (durability) {
            case BUFFERED -> org.pcache.cache.Durability.BUFFERED;
            case FUA -> org.pcache.cache.Durability.FUA;
        };
    }

    /** One connection's view: reads and writes through its stream, everything else as the export. */
    private final class Connection implements NbdExport {
        private final ClientStream stream;

        Connection(ClientStream stream) {
            this.stream = stream;
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
            return PcacheExport.this.size();
        }

        @Override
        public Set<Capability> capabilities() {
            return capabilities;
        }

        @Override
        public CompletableFuture<Void> read(long offset, MemorySegment dst) {
            return stream.readAsync(offset, dst);
        }

        @Override
        public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
            return stream.writeAsync(offset, src, cacheDurability(durability));
        }

        @Override
        public CompletableFuture<Void> flush() {
            return PcacheExport.this.flush();
        }

        @Override
        public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
            return PcacheExport.this.trim(offset, length, durability);
        }

        @Override
        public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
            return stream.writeZeroesAsync(offset, length, cacheDurability(durability));
        }

        @Override
        public CompletableFuture<Void> cache(long offset, long length) {
            return PcacheExport.this.cache(offset, length);
        }

        @Override
        public CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
            return PcacheExport.this.blockStatus(offset, length);
        }
    }
}
