package org.pcache.cache;

/**
 * How the cache treats writes, as dm-pcache encodes it: a 4-bit value in bits 2-5 of the cache_info flags
 * (0 writeback; dm-pcache reserves 1 writethrough, 2 writearound, 3 writeonly, which this version does not implement).
 * The cache's request routing turns the mode into where each request goes.
 */
public enum CacheMode {
    /** Writes land in the cache and are written back later, in log order. */
    WRITEBACK(0);

    private final int onMedia;

    CacheMode(int onMedia) {
        this.onMedia = onMedia;
    }

    /** The value stored in bits 2-5 of the cache_info flags (already shifted down). */
    public int onMedia() {
        return onMedia;
    }

    /** The mode stored as {@code value} in the cache_info flags; throws for a value this version does not implement. */
    public static CacheMode fromOnMedia(int value) {
        for (CacheMode mode : values()) {
            if (mode.onMedia == value) {
                return mode;
            }
        }
        throw new IllegalArgumentException("cache mode " + value + " is not supported");
    }
}
