package org.pcache.cache;

/** How the cache treats writes; the value is persisted in cache_info (bits 2-5 of its flags). */
public enum CacheMode {
    /** Writes land in the cache and are written back later, in log order. */
    WRITEBACK(0);

    private final int onMedia;

    CacheMode(int onMedia) {
        this.onMedia = onMedia;
    }

    /** The code stored in cache_info. */
    public int onMedia() {
        return onMedia;
    }

    /** The mode stored as {@code code}; throws for a code this version does not implement. */
    public static CacheMode fromOnMedia(int code) {
        for (CacheMode mode : values()) {
            if (mode.onMedia == code) {
                return mode;
            }
        }
        throw new IllegalArgumentException("cache mode " + code + " is not supported");
    }
}
