package org.pcache.cache;

/**
 * {@link Pcache#close(java.time.Duration)} ran out of time with something left, which the message says: requests
 * still in flight (the cache closed regardless, and they fail when they end), a miss fill, GC, writeback or a timer
 * still in its step (the cache closed regardless; they end after it and write nothing more), or keys of acknowledged
 * writes that
 * the full kset log could not take yet (the cache is still closing, writeback and GC keep making room, and calling
 * close again finishes it). Unchecked, as close is called from try-with-resources.
 */
public final class CacheCloseException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    CacheCloseException(String message) {
        super(message);
    }
}
