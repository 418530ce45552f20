package org.pcache.cache;

import java.time.Duration;
import java.util.Objects;

import org.pcache.pmem.CacheFormat;

/**
 * How to open a cache.
 *
 * @param dataCrc        keep a CRC32C of every key's data and verify it on hits, replay, writeback and GC; must match
 *                       what an existing cache was formatted with
 * @param cacheMode      how writes are treated
 * @param gcPercent      for a new cache: segment usage (0-90) at which GC starts reclaiming written-back data; an
 *                       existing cache keeps its persisted value
 * @param ksetCount      number of kset streams; keys of a 4 MiB stretch always go to the same one
 * @param dataHeadCount  number of data allocation heads, picked by thread; the cache uses at most one per 4 of its
 *                       segments (a head pins a segment), so one per CPU is safe on any machine
 * @param ksetFlushDelay how long a kset may hold keys before it is written out (dm-pcache: 1 s)
 * @param format         when the open may write a new, empty cache over the region: only a blank one (the default),
 *                       or whatever it holds
 * @param writebackTimeout how long writeback waits for a kset's writes to the backing device before it reports them
 *                       stalled (default 60 s); it goes on waiting for them and never sends them again while they are
 *                       in flight
 * @param writebackDepth  how many backing writes writeback keeps in flight at most (default 32)
 * @param writebackLow    percent of the data area dirty below which writeback idles, unless a drain, a write waiting
 *                        for space or a close asks (default 0: it never idles while anything is dirty)
 * @param writebackHigh   percent dirty from which writeback keeps its full depth in flight; between the two it keeps a
 *                        quarter of it (default 20)
 * @param readAhead      bytes read ahead into the cache when misses form a sequential stream (0, the default: off); a
 *                       multiple of 512 up to {@value #READ_AHEAD_MAX}; random reads never read ahead
 * @param sequentialCutoff bcache's sequential_cutoff: once a stream of contiguous requests of one client passes this
 *                       many bytes, its writes and read misses bypass the cache (default 0: off; bcache uses 4 MiB)
 */
public record CacheOptions(boolean dataCrc, CacheMode cacheMode, int gcPercent, int ksetCount, int dataHeadCount,
                           Duration ksetFlushDelay, CacheFormat format, Duration writebackTimeout, int writebackDepth,
                           int writebackLow, int writebackHigh, long readAhead, long sequentialCutoff) {

    /** Largest {@link #readAhead}. */
    public static final long READ_AHEAD_MAX = 16L << 20;

    /**
     * The default {@link #sequentialCutoff}: off. A write past the cache is no longer absorbed by it, so with a cutoff
     * a sequential writer sees the backing device's errors and outages, which write-back otherwise hides.
     */
    public static final long SEQUENTIAL_CUTOFF_DEFAULT = 0;

    /** The default {@link #writebackTimeout}. */
    public static final Duration WRITEBACK_TIMEOUT_DEFAULT = Duration.ofSeconds(60);

    /** The default {@link #writebackDepth}. */
    public static final int WRITEBACK_DEPTH_DEFAULT = 32;
    /** Largest {@link #writebackDepth}. */
    public static final int WRITEBACK_DEPTH_MAX = 1024;
    /** The default {@link #writebackLow}. */
    public static final int WRITEBACK_LOW_DEFAULT = 0;
    /** The default {@link #writebackHigh}. */
    public static final int WRITEBACK_HIGH_DEFAULT = 20;

    /** Highest gc_percent dm-pcache accepts. */
    public static final int GC_PERCENT_MAX = 90;
    /** dm-pcache's default gc_percent. */
    public static final int GC_PERCENT_DEFAULT = 70;

    /** Throws {@link IllegalArgumentException} for a gc_percent, a count or a delay out of range. */
    public CacheOptions {
        Objects.requireNonNull(format, "format");
        checkGcPercent(gcPercent);
        if (ksetCount < 1 || dataHeadCount < 1) {
            throw new IllegalArgumentException("ksetCount=" + ksetCount + " dataHeadCount=" + dataHeadCount
                    + " (expected: >= 1)");
        }
        if (ksetFlushDelay.isNegative() || ksetFlushDelay.isZero()) {
            throw new IllegalArgumentException("ksetFlushDelay=" + ksetFlushDelay + " (expected: > 0)");
        }
        if (writebackTimeout.isNegative() || writebackTimeout.isZero()) {
            throw new IllegalArgumentException("writebackTimeout=" + writebackTimeout + " (expected: > 0)");
        }
        checkWritebackDepth(writebackDepth);
        checkWatermarks(writebackLow, writebackHigh);
        if (readAhead < 0 || readAhead > READ_AHEAD_MAX || readAhead % Pcache.SECTOR_SIZE != 0) {
            throw new IllegalArgumentException("readAhead=" + readAhead + " (expected: a multiple of "
                    + Pcache.SECTOR_SIZE + " from 0 to " + READ_AHEAD_MAX + ")");
        }
        Objects.requireNonNull(cacheMode, "cacheMode");
        if (sequentialCutoff < 0) {
            throw new IllegalArgumentException("sequentialCutoff=" + sequentialCutoff + " (expected: >= 0)");
        }
    }

    /**
     * dm-pcache's defaults: no data CRC, write-back, gc_percent 70, one kset and one data head per CPU; a blank region
     * is formatted, a damaged cache refused.
     */
    public static CacheOptions defaults() {
        int cpus = Runtime.getRuntime().availableProcessors();
        return new CacheOptions(false, CacheMode.WRITEBACK, GC_PERCENT_DEFAULT, cpus, cpus, Duration.ofSeconds(1),
                CacheFormat.IF_BLANK, WRITEBACK_TIMEOUT_DEFAULT, WRITEBACK_DEPTH_DEFAULT, WRITEBACK_LOW_DEFAULT,
                WRITEBACK_HIGH_DEFAULT, 0, SEQUENTIAL_CUTOFF_DEFAULT);
    }

    /** These options with data CRCs on or off. */
    public CacheOptions withDataCrc(boolean enabled) {
        return new CacheOptions(enabled, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with gc_percent {@code percent}, for a new cache. */
    public CacheOptions withGcPercent(int percent) {
        return new CacheOptions(dataCrc, cacheMode, percent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with {@code count} kset streams. */
    public CacheOptions withKsetCount(int count) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, count, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with {@code count} data heads. */
    public CacheOptions withDataHeadCount(int count) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, count, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with kset flush delay {@code delay}. */
    public CacheOptions withKsetFlushDelay(Duration delay) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, delay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /**
     * These options with {@code always} true: format the region whatever it holds (its cached data is lost); false:
     * format only a blank region.
     */
    public CacheOptions withFormat(boolean always) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay,
                always ? CacheFormat.ALWAYS : CacheFormat.IF_BLANK, writebackTimeout, writebackDepth, writebackLow,
                writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with writeback timeout {@code timeout}. */
    public CacheOptions withWritebackTimeout(Duration timeout) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                timeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with at most {@code depth} backing writes in flight for writeback. */
    public CacheOptions withWritebackDepth(int depth) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, depth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with writeback watermarks {@code low} and {@code high} percent dirty. */
    public CacheOptions withWritebackWatermarks(int low, int high) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, low, high, readAhead, sequentialCutoff);
    }

    /** These options with read-ahead {@code bytes} for sequential misses (0: off). */
    public CacheOptions withReadAhead(long bytes) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, bytes, sequentialCutoff);
    }

    /** These options with cache mode {@code mode}: a new cache gets it, an existing one is switched to it. */
    public CacheOptions withCacheMode(CacheMode mode) {
        return new CacheOptions(dataCrc, mode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, sequentialCutoff);
    }

    /** These options with sequential cutoff {@code bytes} (0: off). */
    public CacheOptions withSequentialCutoff(long bytes) {
        return new CacheOptions(dataCrc, cacheMode, gcPercent, ksetCount, dataHeadCount, ksetFlushDelay, format,
                writebackTimeout, writebackDepth, writebackLow, writebackHigh, readAhead, bytes);
    }

    /** Throws unless {@code depth} is a valid writeback depth (1..1024). */
    static void checkWritebackDepth(int depth) {
        if (depth < 1 || depth > WRITEBACK_DEPTH_MAX) {
            throw new IllegalArgumentException("writeback depth " + depth + " out of range (expected: 1.."
                    + WRITEBACK_DEPTH_MAX + ")");
        }
    }

    /** Throws unless 0 <= low <= high <= 100. */
    public static void checkWatermarks(int low, int high) {
        if (low < 0 || high > 100 || low > high) {
            throw new IllegalArgumentException("writeback watermarks low=" + low + " high=" + high
                    + " (expected: 0 <= low <= high <= 100, percent of the data area dirty)");
        }
    }

    /** Throws unless {@code percent} is a valid gc_percent (0..90). */
    static void checkGcPercent(int percent) {
        if (percent < 0 || percent > GC_PERCENT_MAX) {
            throw new IllegalArgumentException("gc_percent " + percent + " out of range (expected: 0.."
                    + GC_PERCENT_MAX + ")");
        }
    }
}
