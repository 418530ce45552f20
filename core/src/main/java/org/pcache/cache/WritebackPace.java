package org.pcache.cache;

/**
 * How hard writeback works, from the share of the cache's data area that is dirty: below the low watermark it idles,
 * from the low up to the high one it keeps a quarter of its depth of writes in flight, at or above the high one all of
 * it. Someone waiting for writeback (a drain, a write that found the cache full, a close) gets the full depth at any
 * level, so writeback never idles while the cache is full.
 *
 * <p>Invariants: 0 &lt;= low &lt;= high &lt;= 100; depth &gt;= 1.
 *
 * <p>Threading: the watermarks may be changed from any thread ({@link #setWatermarks}); reads see one consistent pair.
 */
final class WritebackPace {

    /** The depth between the watermarks: this fraction of the full one, at least one write. */
    private static final int REDUCED_DIVISOR = 4;

    /** Low and high watermark in percent, as one value so a reader never sees a pair mixed from two updates. */
    private record Watermarks(int low, int high) {
    }

    private final int depth;
    private volatile Watermarks watermarks;

    /** Full depth {@code depth}, watermarks {@code low} and {@code high} percent of dirty data. */
    WritebackPace(int depth, int low, int high) {
        CacheOptions.checkWritebackDepth(depth);
        CacheOptions.checkWatermarks(low, high);
        this.depth = depth;
        this.watermarks = new Watermarks(low, high);
    }

    /** Sets the watermarks; throws {@link IllegalArgumentException} unless 0 &lt;= low &lt;= high &lt;= 100. */
    void setWatermarks(int low, int high) {
        CacheOptions.checkWatermarks(low, high);
        watermarks = new Watermarks(low, high);
    }

    int lowPercent() {
        return watermarks.low();
    }

    int highPercent() {
        return watermarks.high();
    }

    /** The full depth: writes in flight at most. */
    int fullDepth() {
        return depth;
    }

    /**
     * Writes to keep in flight with {@code dirty} of {@code capacity} bytes dirty; 0 means idle. {@code wanted}: someone
     * waits for writeback.
     */
    int depth(long dirty, long capacity, boolean wanted) {
        if (dirty <= 0) {
            return 0;
        }
        if (wanted) {
            return depth;
        }
        Watermarks levels = watermarks;
        double percent = dirty * 100.0 / capacity;
        if (percent >= levels.high()) {
            return depth;
        }
        if (percent >= levels.low()) {
            return Math.max(1, depth / REDUCED_DIVISOR);
        }
        return 0;
    }
}
