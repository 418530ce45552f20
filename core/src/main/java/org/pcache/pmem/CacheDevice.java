package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * An opened cache device (dm-pcache's pcache_cache_dev with the cache's control records): the segment chain the cache
 * runs on and the replicated records it updates while running, cache_info, key_tail, dirty_tail and each segment's
 * gen. It holds each record's current value and is the one place that persists an update to it, as one
 * {@link DualReplica#writeNext} (rule 3). Where things sit is {@link CacheDeviceLayout}'s; formatting, loading and
 * validating the device is {@link CacheDeviceOpener}'s, reached through {@link #open} and {@link #inspect}.
 *
 * <p>Threading: the getters may be called from any thread. {@link #writeSegmentGen} may run concurrently for
 * different segments (each segment's replica is its own monitor; callers serialise per segment anyway, as
 * dm-pcache's gen writes are single-threaded). Each tail has a single writer (key_tail: GC, dirty_tail: writeback),
 * serialised on its replica. cache_info writes are rare and synchronised.
 */
public final class CacheDevice {
    /** The largest gc_percent dm-pcache accepts. */
    public static final int GC_PERCENT_MAX = 90;
    /** gc_percent of a new cache. */
    public static final int GC_PERCENT_DEFAULT = 70;

    /**
     * How to create a cache, and what an existing one must match.
     *
     * @param dataCrc whether keys carry a data CRC; an existing cache must have the same setting
     * @param cacheMode 0 writeback (the only mode dm-pcache implements) .. 3; recorded for a new cache
     * @param gcPercent 0..90, for a new cache (an existing one keeps its own)
     * @param format when the open may format the device
     */
    public record Options(boolean dataCrc, int cacheMode, int gcPercent, CacheFormat format) {
        /** Options that format only a blank device ({@link CacheFormat#IF_BLANK}). */
        public Options(boolean dataCrc, int cacheMode, int gcPercent) {
            this(dataCrc, cacheMode, gcPercent, CacheFormat.IF_BLANK);
        }

        public Options {
            Objects.requireNonNull(format, "format");
            if (cacheMode < 0 || cacheMode > CacheInfo.CACHE_MODE_MAX) {
                throw new IllegalArgumentException("cacheMode " + cacheMode + " outside 0.."
                        + CacheInfo.CACHE_MODE_MAX);
            }
            if (gcPercent < 0 || gcPercent > GC_PERCENT_MAX) {
                throw new IllegalArgumentException("gcPercent " + gcPercent + " outside 0.." + GC_PERCENT_MAX);
            }
        }

        /** Writeback, no data CRC, gc_percent 70: dm-pcache's defaults. */
        public static Options defaults() {
            return new Options(false, 0, GC_PERCENT_DEFAULT);
        }
    }

    /** A replicated record and the value it holds (or, during a format, is about to be written with). */
    record Replicated<T>(DualReplica replica, T value) {
    }

    private final PmemRegion region;
    private final boolean formatted;
    private final int superblockFlags;
    private final int physicalSegmentCount;
    private final SegmentChain chain;
    private final AtomicLongArray gens;
    private final DualReplica cacheInfoReplica;
    private final DualReplica keyTailReplica;
    private final DualReplica dirtyTailReplica;
    /** Written under cacheInfoReplica's monitor. */
    private volatile CacheInfo cacheInfo;
    /** Written under keyTailReplica's monitor. */
    private volatile CachePos keyTail;
    /** Written under dirtyTailReplica's monitor. */
    private volatile CachePos dirtyTail;

    CacheDevice(PmemRegion region, boolean formatted, int superblockFlags, int physicalSegmentCount,
                SegmentChain chain, Replicated<CacheInfo> cacheInfo, Replicated<CachePos> keyTail,
                Replicated<CachePos> dirtyTail) {
        this.region = region;
        this.formatted = formatted;
        this.superblockFlags = superblockFlags;
        this.physicalSegmentCount = physicalSegmentCount;
        this.chain = chain;
        this.gens = new AtomicLongArray(chain.segmentCount());
        for (int seg = 0; seg < chain.segmentCount(); seg++) {
            gens.set(seg, chain.loadedGen(seg));
        }
        this.cacheInfoReplica = cacheInfo.replica();
        this.cacheInfo = cacheInfo.value();
        this.keyTailReplica = keyTail.replica();
        this.keyTail = keyTail.value();
        this.dirtyTailReplica = dirtyTail.replica();
        this.dirtyTail = dirtyTail.value();
    }

    /**
     * Opens the cache on {@code region}: formats it when the superblock magic is 0 (or the cache was never completely
     * formatted), or whatever it holds with {@link CacheFormat#ALWAYS}; otherwise validates superblock, cache_info,
     * segment chain and tails (see {@link CacheDeviceOpener}).
     *
     * @throws CacheDeviceTooSmallException if the region is under {@link CacheDeviceLayout#MIN_SIZE}
     * @throws CacheInfoLostException if neither cache_info replica of a formatted cache is valid
     * @throws CorruptMediaException if a record fails validation
     * @throws DataCrcMismatchException if the existing cache's data_crc differs from {@code options.dataCrc()}
     */
    public static CacheDevice open(PmemRegion region, Options options)
            throws CacheDeviceTooSmallException, CorruptMediaException, DataCrcMismatchException {
        return CacheDeviceOpener.open(region, options);
    }

    /**
     * Opens an existing cache for inspection (check, dump, recover): validates like {@link #open} but never formats
     * and never writes; a blank or incompletely formatted device is an error here.
     *
     * @throws CacheDeviceTooSmallException if the region is under {@link CacheDeviceLayout#MIN_SIZE}
     * @throws CorruptMediaException if a record fails validation or the device holds no formatted cache
     */
    public static CacheDevice inspect(PmemRegion region) throws CacheDeviceTooSmallException, CorruptMediaException {
        return CacheDeviceOpener.inspect(region);
    }

    /** The region the cache lives on. */
    public PmemRegion region() {
        return region;
    }

    /** Whether this open formatted the device (new device, or no completely formatted cache on it). */
    public boolean formatted() {
        return formatted;
    }

    /** The superblock's flags word. */
    public int superblockFlags() {
        return superblockFlags;
    }

    /** Physical segments on the device (the superblock's seg_num). */
    public int physicalSegmentCount() {
        return physicalSegmentCount;
    }

    /** Logical segments of the cache (cache_info's n_segs). */
    public int segmentCount() {
        return chain.segmentCount();
    }

    /** Physical id of logical segment {@code seg}. */
    public int physicalSegmentId(int seg) {
        return chain.physicalId(seg);
    }

    /** Region offset of logical segment {@code seg}'s data area. */
    public long dataOffset(int seg) {
        return CacheDeviceLayout.segmentOffset(chain.physicalId(seg)) + CacheDeviceLayout.SEGMENT_DATA_OFFSET;
    }

    /** Generation of logical segment {@code seg}: as loaded (0 when no replica was valid) or last written. */
    public long segmentGen(int seg) {
        return gens.get(seg);
    }

    /** Persists {@code gen} as logical segment {@code seg}'s generation (rule 5: before the segment is reused). */
    public void writeSegmentGen(int seg, long gen) {
        DualReplica replica = chain.genReplica(seg);
        MemorySegment staging = OnMediaLayout.staging(SegmentGenOnMedia.SIZE);
        new SegmentGenOnMedia().wrap(staging).gen(gen);
        synchronized (replica) {
            replica.writeNext(staging);
            gens.set(seg, gen);
        }
    }

    /** The current cache_info. */
    public CacheInfo cacheInfo() {
        return cacheInfo;
    }

    /**
     * Persists {@code info} as the next cache_info replica. Only gc_percent, INIT_DONE, the cache mode and unknown
     * flag bits may change; segId, nSegs and dataCrc describe the layout and are fixed.
     */
    public void writeCacheInfo(CacheInfo info) {
        if (info.gcPercent() > GC_PERCENT_MAX) {
            throw new IllegalArgumentException("gcPercent " + info.gcPercent() + " above " + GC_PERCENT_MAX);
        }
        synchronized (cacheInfoReplica) {
            CacheInfo current = cacheInfo;
            if (info.segId() != current.segId() || info.nSegs() != current.nSegs()
                    || info.dataCrc() != current.dataCrc()) {
                throw new IllegalArgumentException("cache_info " + info + " changes the layout of " + current);
            }
            // The DATALESS_KEYS mark is sticky: a rewrite from an older snapshot must not drop it.
            CacheInfo written = current.datalessKeys() ? info.withDatalessKeys() : info;
            MemorySegment staging = OnMediaLayout.staging(CacheInfoOnMedia.SIZE);
            new CacheInfoOnMedia().wrap(staging).encode(written);
            cacheInfoReplica.writeNext(staging);
            cacheInfo = written;
        }
    }

    /**
     * Marks cache_info with the DATALESS_KEYS extension, persisted, unless it has it already: called before the first
     * data-less key is appended, so no image holds one without the mark.
     */
    public void markDatalessKeys() {
        if (cacheInfo.datalessKeys()) {
            return;
        }
        synchronized (cacheInfoReplica) {
            if (!cacheInfo.datalessKeys()) {
                writeCacheInfo(cacheInfo.withDatalessKeys());
            }
        }
    }

    /** Where GC resumes: the first kset not yet reclaimed. */
    public CachePos keyTail() {
        return keyTail;
    }

    /** Where writeback resumes: the first kset not yet written back. */
    public CachePos dirtyTail() {
        return dirtyTail;
    }

    /** Persists the key tail (GC's single writer). */
    public void writeKeyTail(CachePos pos) {
        MemorySegment staging = encode(pos);
        synchronized (keyTailReplica) {
            keyTailReplica.writeNext(staging);
            keyTail = pos;
        }
    }

    /** Persists the dirty tail (writeback's single writer; rule 4: after the backing flush). */
    public void writeDirtyTail(CachePos pos) {
        MemorySegment staging = encode(pos);
        synchronized (dirtyTailReplica) {
            dirtyTailReplica.writeNext(staging);
            dirtyTail = pos;
        }
    }

    @Override
    public String toString() {
        return "CacheDevice[segNum=" + physicalSegmentCount + " nSegs=" + segmentCount() + " keyTail=" + keyTail
                + " dirtyTail=" + dirtyTail + " " + region + "]";
    }

    /** The tail record for {@code pos}, after checking that it lies on the chain where a kset can start. */
    private MemorySegment encode(CachePos pos) {
        if (pos.seg() >= segmentCount() || pos.off() > CacheDeviceLayout.MAX_KSET_OFFSET
                || pos.off() % Long.BYTES != 0) {
            throw new IllegalArgumentException("tail " + pos + " outside " + segmentCount() + " segments of "
                    + CacheDeviceLayout.SEGMENT_DATA_SIZE + " bytes");
        }
        MemorySegment staging = OnMediaLayout.staging(CachePosOnMedia.SIZE);
        new CachePosOnMedia().wrap(staging).encode(pos);
        return staging;
    }
}
