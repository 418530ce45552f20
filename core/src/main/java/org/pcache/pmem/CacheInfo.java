package org.pcache.pmem;

import static org.pcache.pmem.CacheInfoOnMedia.CACHE_MODE_MASK;
import static org.pcache.pmem.CacheInfoOnMedia.CACHE_MODE_SHIFT;
import static org.pcache.pmem.CacheInfoOnMedia.FLAG_DATA_CRC;
import static org.pcache.pmem.CacheInfoOnMedia.FLAG_INIT_DONE;
import static org.pcache.pmem.CacheInfoOnMedia.GC_PERCENT_MASK;
import static org.pcache.pmem.CacheInfoOnMedia.GC_PERCENT_SHIFT;
import static org.pcache.pmem.CacheInfoOnMedia.KNOWN_FLAGS;

/**
 * The decoded cache_info: where the segment chain starts, how long it is, and the cache's settings.
 *
 * <p>{@code flags} is the raw on-media word. The constructor recomputes its known bits from the other components and
 * keeps only the bits dm-pcache does not define, so a rewrite preserves unknown bits and can never contradict the
 * decoded fields.
 *
 * @param segId physical id of the first segment of the chain
 * @param nSegs number of segments in the chain (logical cache segments)
 * @param dataCrc whether every key carries a CRC of its data
 * @param initDone whether the cache was completely formatted
 * @param cacheMode 0 writeback (the only mode dm-pcache implements), 1 writethrough, 2 writearound, 3 writeonly,
 *                  15 passthrough (pcache's; the kernel does not use the value)
 * @param gcPercent garbage-collection threshold in percent of segments used
 * @param flags the raw flags word
 */
public record CacheInfo(int segId, int nSegs, boolean dataCrc, boolean initDone, int cacheMode, int gcPercent,
                        int flags) {
    /** Largest cache mode value the 4-bit field holds. */
    public static final int CACHE_MODE_MAX = CACHE_MODE_MASK >>> CACHE_MODE_SHIFT;
    /** Largest value the 7-bit gc_percent field holds (the cache accepts at most 90). */
    public static final int GC_PERCENT_FIELD_MAX = GC_PERCENT_MASK >>> GC_PERCENT_SHIFT;

    public CacheInfo {
        if (cacheMode < 0 || cacheMode > CACHE_MODE_MAX) {
            throw new IllegalArgumentException("cacheMode " + cacheMode + " outside 0.." + CACHE_MODE_MAX);
        }
        if (gcPercent < 0 || gcPercent > GC_PERCENT_FIELD_MAX) {
            throw new IllegalArgumentException("gcPercent " + gcPercent + " outside 0.." + GC_PERCENT_FIELD_MAX);
        }
        flags = (flags & ~KNOWN_FLAGS)
                | (dataCrc ? FLAG_DATA_CRC : 0)
                | (initDone ? FLAG_INIT_DONE : 0)
                | cacheMode << CACHE_MODE_SHIFT
                | gcPercent << GC_PERCENT_SHIFT;
    }

    /** Decodes the bit fields of a raw flags word. */
    public static CacheInfo fromFlags(int segId, int nSegs, int flags) {
        return new CacheInfo(segId, nSegs, (flags & FLAG_DATA_CRC) != 0, (flags & FLAG_INIT_DONE) != 0,
                (flags & CACHE_MODE_MASK) >>> CACHE_MODE_SHIFT, (flags & GC_PERCENT_MASK) >>> GC_PERCENT_SHIFT, flags);
    }

    /** This cache_info with another gc_percent. */
    public CacheInfo withGcPercent(int percent) {
        return new CacheInfo(segId, nSegs, dataCrc, initDone, cacheMode, percent, flags);
    }

    /** This cache_info with another cache mode. */
    public CacheInfo withCacheMode(int mode) {
        return new CacheInfo(segId, nSegs, dataCrc, initDone, mode, gcPercent, flags);
    }

    /** Whether the kset log may hold data-less keys (pcache's DATALESS_KEYS extension). */
    public boolean datalessKeys() {
        return (flags & CacheInfoOnMedia.FLAG_DATALESS_KEYS) != 0;
    }

    /** This cache_info with the DATALESS_KEYS extension marked. */
    public CacheInfo withDatalessKeys() {
        return new CacheInfo(segId, nSegs, dataCrc, initDone, cacheMode, gcPercent,
                flags | CacheInfoOnMedia.FLAG_DATALESS_KEYS);
    }

    /** This cache_info with INIT_DONE set. */
    public CacheInfo withInitDone() {
        return new CacheInfo(segId, nSegs, dataCrc, true, cacheMode, gcPercent, flags);
    }
}
