package org.pcache.cache;

/**
 * Decides where a request goes, from the cache mode and the client's sequential run (dm-pcache's cache_req.c sends
 * every request to the cache, as write-back is the only mode it implements; the other modes and the sequential
 * cutoff are those of bcache and Open CAS). {@link Pcache}'s read and write paths ask it and follow the answer, and it
 * counts every bypass by its reason.
 *
 * <p>The answer is only where a request should go: {@link BypassWrite} still writes into the cache a write whose
 * range holds data writeback could later copy over it, and dirty data stays readable and is written back in every
 * mode. Discard is not routed: in every mode it is a data-less DISCARD key in the log, which writeback passes on to
 * the backing device in log order, after any older dirty data of its range.
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
    private volatile CacheMode mode;

    /** Routes for a cache in {@code mode}, with sequential cutoff {@code sequentialCutoff} (0: off). */
    RequestRouter(CacheMode mode, long sequentialCutoff, CacheStats stats) {
        this.mode = mode;
        this.sequentialCutoff = sequentialCutoff;
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

    /**
     * A write-zeroes: as a write. In the cache it is a data-less ZERO key, which takes no data space however long it
     * is, so no length sends it past the cache.
     */
    Route writeZeroes(ClientStream stream, long offset, long length) {
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
