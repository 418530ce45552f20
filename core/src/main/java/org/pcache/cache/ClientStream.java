package org.pcache.cache;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/**
 * One client's requests, as an NBD connection sends them: the cache detects its sequential runs, bcache style, and
 * once a run passes {@link CacheOptions#sequentialCutoff()} its writes and read misses bypass the cache. A request
 * continues a run when it starts where one of the client's last few requests ended (a client may interleave a few
 * streams, and requests in flight together arrive in order), so a backup or a large copy stops flushing the cache
 * after its first few MiB while the same client's random requests are still cached.
 *
 * <p>Get one per client with {@link Pcache#openStream()}; {@link Pcache}'s own read and write methods use a stream
 * shared by every caller that has none, which detects no run (it would mix clients). Nothing to close: a stream is
 * only memory.
 *
 * <p>Threading: any thread; the run table is guarded by this object's monitor.
 */
public final class ClientStream {

    /** How many runs one client may interleave and still have each detected. */
    static final int RECENT_RUNS = 8;

    private final Pcache cache;
    /** Where each recent run ended and how many bytes it holds so far (0: unused slot). */
    private final long[] ends = new long[RECENT_RUNS];
    private final long[] runs = new long[RECENT_RUNS];
    /** When each slot was used last, in requests: a new run takes the least recently used one. */
    private final long[] used = new long[RECENT_RUNS];
    private long requests;

    /** False for the stream shared by callers that name none: it mixes clients, so it detects no run. */
    private final boolean detectsRuns;

    ClientStream(Pcache cache, boolean detectsRuns) {
        this.cache = cache;
        this.detectsRuns = detectsRuns;
    }

    /** {@link Pcache#readAsync} as this client. */
    public CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
        return cache.read(this, offset, dst);
    }

    /** {@link Pcache#writeAsync} as this client. */
    public CompletableFuture<Void> writeAsync(long offset, MemorySegment src, Durability durability) {
        return cache.write(this, offset, src, durability);
    }

    /** {@link Pcache#writeZeroesAsync} as this client. */
    public CompletableFuture<Void> writeZeroesAsync(long offset, long length, Durability durability) {
        return cache.writeZeroes(this, offset, length, durability);
    }

    /**
     * Records the request {@code [offset, offset + length)} and returns the bytes of the run it belongs to, itself
     * included: its own length when it starts a new run.
     */
    synchronized long extend(long offset, long length) {
        if (!detectsRuns) {
            return 0;
        }
        requests++;
        int oldest = 0;
        for (int i = 0; i < RECENT_RUNS; i++) {
            if (runs[i] > 0 && ends[i] == offset) {
                ends[i] = offset + length;
                runs[i] += length;
                used[i] = requests;
                return runs[i];
            }
            if (used[i] < used[oldest]) {
                oldest = i;
            }
        }
        ends[oldest] = offset + length;
        runs[oldest] = length;
        used[oldest] = requests;
        return length;
    }
}
