package org.pcache.nbd;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.function.ToDoubleFunction;
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
 * <p>Latency: every command the server hands over is timed from the call to the completion of its future, one
 * {@link RequestLatency} per kind (HdrHistogram), and published in the registry given, tagged {@code op} (read,
 * write, flush, trim, write_zeroes, cache): the count as {@value #REQUEST_COUNTER}, p50 and p99 over the last 30 to
 * 60 s as {@value #LATENCY_GAUGE} (tag {@code quantile}, seconds), the largest as {@value #LATENCY_MAX_GAUGE}.
 * The reads a CACHE request makes are part of its own time, not counted as reads.
 *
 * <p>Threading: called concurrently from every connection's reader thread; the cache is thread-safe, the latency
 * recorders too, and the prefetch buffers are handed out through a concurrent queue. {@link #close} frees them once no
 * request is in flight (after the server stopped).
 */
public final class PcacheExport implements NbdExport, AutoCloseable {

    /** Size of one prefetch buffer: a CACHE request is read through the cache in pieces of this many bytes. */
    static final int PREFETCH_PIECE = 1 << 20;
    /** CACHE requests prefetching at once, export-wide; a hint arriving while all are busy is acknowledged only. */
    static final int PREFETCH_BUFFERS = 4;

    /** Counter of NBD commands, tagged {@code op}. */
    public static final String REQUEST_COUNTER = "pcache.nbd.requests";
    /** Gauge of command latency in seconds, tagged {@code op} and {@code quantile} (0.5, 0.99). */
    public static final String LATENCY_GAUGE = "pcache.nbd.request.latency";
    /** Gauge of the largest command latency in seconds, tagged {@code op}. */
    public static final String LATENCY_MAX_GAUGE = "pcache.nbd.request.latency.max";
    private static final String SECONDS = "seconds";

    /** The commands that are timed; the tag value is the lower-case name. */
    enum Op {
        READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, CACHE;

        String tag() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private static final Set<Capability> CAPABILITIES = EnumSet.of(Capability.FLUSH, Capability.FUA,
            Capability.TRIM, Capability.WRITE_ZEROES, Capability.CACHE, Capability.MULTI_CONN);

    private final Pcache cache;
    private final String name;
    private final String description;
    private final Arena arena = Arena.ofShared();
    private final BlockingQueue<MemorySegment> prefetchBuffers = new ArrayBlockingQueue<>(PREFETCH_BUFFERS);
    private final Map<Op, RequestLatency> latencies = new EnumMap<>(Op.class);

    /**
     * Exports {@code cache} as {@code name}, publishing the latency of every command in {@code registry}. The cache
     * must be open for as long as a server serves this export; it stays the caller's to close.
     */
    public PcacheExport(Pcache cache, String name, String description, MeterRegistry registry) {
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
        for (Op op : Op.values()) {
            RequestLatency latency = new RequestLatency(System::nanoTime);
            latencies.put(op, latency);
            register(registry, op, latency);
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
        long start = System.nanoTime();
        return timed(Op.READ, start, readUntimed(offset, dst));
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        long start = System.nanoTime();
        return timed(Op.WRITE, start, cache.writeAsync(offset, src, cacheDurability(durability)));
    }

    @Override
    public CompletableFuture<Void> flush() {
        long start = System.nanoTime();
        return timed(Op.FLUSH, start, cache.flushAsync());
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        long start = System.nanoTime();
        return timed(Op.TRIM, start, cache.discardAsync(offset, length));
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        long start = System.nanoTime();
        return timed(Op.WRITE_ZEROES, start, cache.writeZeroesAsync(offset, length, cacheDurability(durability)));
    }

    /**
     * Prefetch: reads the range through the cache piece by piece into a scratch buffer, which leaves every missed
     * piece in the cache as clean keys (as any read miss does), and completes when the last piece arrived. CACHE is
     * a hint (proto.md), so when all {@value #PREFETCH_BUFFERS} buffers are busy the request succeeds at once
     * without prefetching; memory stays bounded and no reader thread ever waits for a buffer.
     */
    @Override
    public CompletableFuture<Void> cache(long offset, long length) {
        long start = System.nanoTime();
        MemorySegment buffer = prefetchBuffers.poll();
        if (buffer == null) {
            return timed(Op.CACHE, start, CompletableFuture.completedFuture(null));
        }
        CompletableFuture<Void> done = new CompletableFuture<>();
        new Prefetch(offset, offset + length, buffer, done).next();
        return timed(Op.CACHE, start, done);
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
            readUntimed(at, buffer.asSlice(0, piece)).whenComplete((ignored, failure) -> {
                if (failure != null) {
                    prefetchBuffers.add(buffer);
                    done.completeExceptionally(failure);
                } else {
                    next();
                }
            });
        }
    }

    private CompletableFuture<Void> readUntimed(long offset, MemorySegment dst) {
        return cache.readAsync(offset, dst);
    }

    /** Records the time from {@code startNanos} to the completion of {@code done} under {@code op}. */
    private CompletableFuture<Void> timed(Op op, long startNanos, CompletableFuture<Void> done) {
        RequestLatency latency = latencies.get(op);
        done.whenComplete((ignored, failure) -> latency.record(System.nanoTime() - startNanos));
        return done;
    }

    private static void register(MeterRegistry registry, Op op, RequestLatency latency) {
        FunctionCounter.builder(REQUEST_COUNTER, latency, l -> l.snapshot().count()).tag("op", op.tag())
                .description("NBD commands the cache completed").register(registry);
        gauge(LATENCY_GAUGE, op, latency, l -> l.snapshot().p50Nanos()).tag("quantile", "0.5").register(registry);
        gauge(LATENCY_GAUGE, op, latency, l -> l.snapshot().p99Nanos()).tag("quantile", "0.99").register(registry);
        gauge(LATENCY_MAX_GAUGE, op, latency, l -> l.snapshot().maxNanos()).register(registry);
    }

    private static Gauge.Builder<RequestLatency> gauge(String name, Op op, RequestLatency latency,
                                                       ToDoubleFunction<RequestLatency> nanos) {
        return Gauge.builder(name, latency, l -> nanos.applyAsDouble(l) / 1e9).tag("op", op.tag()).baseUnit(SECONDS)
                .description("Time from an NBD command's arrival at the cache to its completion, over the last "
                        + "30 to 60 s");
    }

    private static org.pcache.cache.Durability cacheDurability(Durability durability) {
        return switch (durability) {
            case BUFFERED -> org.pcache.cache.Durability.BUFFERED;
            case FUA -> org.pcache.cache.Durability.FUA;
        };
    }
}
