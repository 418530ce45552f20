package org.pcache.cache;

import java.util.Locale;

/**
 * How the cache treats requests, as dm-pcache encodes it: a 4-bit value in bits 2-5 of the cache_info flags (0
 * writeback, 1 writethrough, 2 writearound, 3 writeonly; pass-through is pcache's, at 15, a value the kernel does not
 * use). {@link RequestRouter} turns the mode into where each request goes; whatever the mode, dirty data already in
 * the cache stays readable and is written back.
 */
public enum CacheMode {
    /** Writes land in the cache and are written back later, in log order; reads fill. */
    WRITEBACK(0),
    /** Writes complete once the backing device and the cache hold them, the cached copy clean; reads fill. */
    WRITETHROUGH(1),
    /** Writes go to the backing device only; reads fill. */
    WRITEAROUND(2),
    /** Writes land in the cache as in write-back; read misses come from the backing device and are not kept. */
    WRITEONLY(3),
    /** Writes go to the backing device, read misses come from it; nothing new is kept. */
    PASSTHROUGH(15);

    private final int onMedia;

    CacheMode(int onMedia) {
        this.onMedia = onMedia;
    }

    /** The value stored in bits 2-5 of the cache_info flags (already shifted down). */
    public int onMedia() {
        return onMedia;
    }

    /** The name users type and status shows: {@code writeback}, {@code writethrough}, ... */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Whether read misses are kept in the cache. */
    boolean fillsReads() {
        return this == WRITEBACK || this == WRITETHROUGH || this == WRITEAROUND;
    }

    /** The mode stored as {@code value} in the cache_info flags; throws for a value no mode uses. */
    public static CacheMode fromOnMedia(int value) {
        for (CacheMode mode : values()) {
            if (mode.onMedia == value) {
                return mode;
            }
        }
        throw new IllegalArgumentException("cache mode " + value + " is not supported");
    }

    /** The mode named {@code label} (case-insensitive); throws, naming the modes, for anything else. */
    public static CacheMode parse(String label) {
        for (CacheMode mode : values()) {
            if (mode.label().equals(label.toLowerCase(Locale.ROOT))) {
                return mode;
            }
        }
        throw new IllegalArgumentException("unknown cache mode '" + label + "' (expected one of writeback, "
                + "writethrough, writearound, writeonly, passthrough)");
    }
}
