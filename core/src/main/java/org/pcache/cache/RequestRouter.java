package org.pcache.cache;

/**
 * Decides where a request goes, from the cache mode (dm-pcache's cache_req.c, which sends every request to the cache
 * because write-back is the only mode it implements). {@link Pcache}'s read, write and flush paths ask it and follow the
 * answer; this is the one place that will decide differently per {@link CacheMode}.
 *
 * <p>Discard is not routed: it is advisory and the cache keeps the data, so it goes nowhere.
 */
final class RequestRouter {

    /** Where a request goes. */
    enum Route {
        /** To the cache; what the backing device sees, and when, is the cache's business (see each method). */
        CACHE
    }

    private final CacheMode mode;

    /** Routes for a cache whose cache_info records {@code mode}. */
    RequestRouter(CacheMode mode) {
        this.mode = mode;
    }

    /** Reads: hits come from the cache, gaps from the backing device, and what a gap brings back is kept as clean. */
    Route read() {
        return switch (mode) {
            case WRITEBACK -> Route.CACHE;
        };
    }

    /**
     * Writes and write-zeroes: into the cache only, acknowledged from there; writeback copies them to the backing
     * device later, in log order.
     */
    Route write() {
        return switch (mode) {
            case WRITEBACK -> Route.CACHE;
        };
    }

    /**
     * Flushes: make the kset log durable, nothing more; the backing device is flushed by writeback before dirty_tail
     * moves.
     */
    Route flush() {
        return switch (mode) {
            case WRITEBACK -> Route.CACHE;
        };
    }
}
