package org.pcache.cache;

/**
 * Decides where a request goes, from the cache mode and the client's sequential run (dm-pcache's cache_req.c sends
 * every request to the cache, as write-back is the only mode it implements; the other modes and the sequential
 * cutoff are those of bcache and Open CAS). {@link Pcache}'s read and write paths ask it and follow the answer, and it
 * counts every bypass by its reason.
 *
 * <p>The answer is only where a request should go: {@link BypassWrite} still writes into the cache a write whose
 * range holds data writeback could later copy over it, and dirty data stays readable and is written back in every
 * mode. Discard is not routed: it is advisory and the cache keeps the data, so it goes nowhere.
 *
 * <p>Threading: any thread; the mode is switched online ({@link #setMode}) and read once per request.
 */
final class RequestRouter {

    /** Where a request goes. */
    enum Route {
        /**
         * Writes: into the cache only, acknowledged from there, written back later in log order. Reads: hits from the
         * cache, gaps from the backing device, kept as clean.
         */
        CACHE,
        /** Writes: to the backing device, then into the cache as clean (write-through). */
        THROUGH,
        /**
         * Writes: to the backing device only. Reads: hits from the cache (dirty data lives there), gaps from the
         * backing device, not kept.
         */
        BYPASS
    }

    private final CacheStats stats;
    private final long sequentialCutoff;
    /** Write-zeroes longer than this bypass the cache. */
    private final long tooLarge;
    private volatile CacheMode mode;

    /** Routes for a cache in {@code mode} whose write-zeroes over more than {@code tooLarge} bytes bypass. */
    RequestRouter(CacheMode mode, long sequentialCutoff, long tooLarge, CacheStats stats) {
        this.mode = mode;
        this.sequentialCutoff = sequentialCutoff;
        this.tooLarge = tooLarge;
        this.stats = stats;
    }

    CacheMode mode() {
        return mode;
    }

    /** Routes every later request for {@code newMode}. */
    void setMode(CacheMode newMode) {
        mode = newMode;
    }

    /** A read of {@code length} bytes at {@code offset} by {@code stream}: CACHE (misses filled) or BYPASS. */
    Route read(ClientStream stream, long offset, long length) {
        long run = stream.extend(offset, length);
        CacheMode current = mode;
        if (!current.fillsReads()) {
            return bypass(BypassReason.MODE, length);
        }
        if (sequential(run)) {
            return bypass(BypassReason.SEQUENTIAL, length);
        }
        return Route.CACHE;
    }

    /** A write of {@code length} bytes at {@code offset} by {@code stream}. */
    Route write(ClientStream stream, long offset, long length) {
        long run = stream.extend(offset, length);
        CacheMode current = mode;
        return switch (current) {
            case WRITEAROUND, PASSTHROUGH -> bypass(BypassReason.MODE, length);
            case WRITEBACK, WRITEONLY, WRITETHROUGH -> {
                if (sequential(run)) {
                    yield bypass(BypassReason.SEQUENTIAL, length);
                }
                yield current == CacheMode.WRITETHROUGH ? Route.THROUGH : Route.CACHE;
            }
        };
    }

    /** A write-zeroes: as a write, and past the cache when it is too large to keep. */
    Route writeZeroes(ClientStream stream, long offset, long length) {
        if (length > tooLarge && mode != CacheMode.WRITEAROUND && mode != CacheMode.PASSTHROUGH) {
            stream.extend(offset, length);
            return bypass(BypassReason.TOO_LARGE, length);
        }
        return write(stream, offset, length);
    }

    private boolean sequential(long run) {
        return sequentialCutoff > 0 && run > sequentialCutoff;
    }

    private Route bypass(BypassReason reason, long length) {
        stats.bypassed(reason, length);
        return Route.BYPASS;
    }
}
