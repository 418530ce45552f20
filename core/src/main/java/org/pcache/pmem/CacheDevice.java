package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLongArray;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cache device: dm-pcache's on-media layout opened on a {@link PmemRegion}, formatted on first use, validated
 * otherwise up to (not including) kset replay, which belongs to the cache.
 *
 * <pre>
 *  device:  0      4K          8K           12K          16K          20K          20K + 16M     ...
 *           +------+-----------+------------+------------+------------+------------+------------+----
 *           |unused| superblock|cache_info 0|cache_info 1| cache_ctrl | segment 0  | segment 1  | ...
 *           +------+-----------+------------+------------+------------+------------+------------+----
 *  segment: 0             4K             8K              12K                                     16M
 *           +-------------+--------------+---------------+----------------------------------------+
 *           |seg_info 0   |seg_info 1    |gen 0, gen 1   |            data area                   |
 *           +-------------+--------------+---------------+----------------------------------------+
 * </pre>
 * cache_ctrl holds key_tail[0] @0, key_tail[1] @16, dirty_tail[0] @32, dirty_tail[1] @48. docs/format.md has every
 * record.
 *
 * <p>Persistence order of a format (dm-pcache's, with its barriers made explicit):
 * <ol>
 *   <li>zero cache_info and cache_ctrl (12 KiB) and drain, so no stale cache_info can outlive the new superblock;</li>
 *   <li>superblock, persisted;</li>
 *   <li>the segment chain ({@link SegmentChain}: per segment header zeroed, gen 0, segment_info, link from the
 *       previous one);</li>
 *   <li>dirty_tail (0:0), then key_tail (0:0), each persisted;</li>
 *   <li>cache_info with INIT_DONE, persisted: the commit point. Until it is durable, the next open formats again;</li>
 *   <li>the same cache_info into the other slot, persisted, so that both replicas are valid from the start.</li>
 * </ol>
 * Every later update is one {@link DualReplica#writeNext} (rule 3): cache_info, a tail, a segment gen.
 *
 * <p>Validation on open: superblock magic, CRC, endian flag, seg_num against the device size; cache_info n_segs,
 * seg_id and gc_percent; every segment id on the chain, a missing HAS_NEXT, a cycle; both tails' segment and offset.
 * Each failure throws {@link CorruptMediaException} naming the field and value before anything is written.
 *
 * <p>Threading: open is single-threaded. Afterwards the getters may be called from any thread.
 * {@link #writeSegmentGen} may run concurrently for different segments (each segment's replica is its own monitor;
 * callers serialise per segment anyway, as dm-pcache's gen writes are single-threaded). Each tail has a single writer
 * (key_tail: GC, dirty_tail: writeback), serialised on its replica. cache_info writes are rare and synchronised.
 */
public final class CacheDevice {
    private static final Logger LOG = LoggerFactory.getLogger(CacheDevice.class);

    private static final long KIB = 1024;
    private static final long MIB = 1024 * KIB;
    private static final long AREA_SIZE = 4 * KIB;

    /** Size of a segment (PCACHE_SEG_SIZE). */
    public static final long SEGMENT_SIZE = 16 * MIB;
    /** Smallest cache device dm-pcache accepts (PCACHE_CACHE_DEV_SIZE_MIN). */
    public static final long MIN_SIZE = 512 * MIB;
    /** Most segments a device may have (PCACHE_CACHE_SEGS_MAX, 16 TiB). */
    public static final int SEGMENTS_MAX = 1 << 20;

    /** The superblock, after 4 KiB left unused. */
    public static final long SUPERBLOCK_OFFSET = AREA_SIZE;
    /** cache_info replica 0; replica 1 follows 4 KiB later. */
    public static final long CACHE_INFO_OFFSET = SUPERBLOCK_OFFSET + AREA_SIZE;
    /** cache_ctrl: the two tails, two adjacent replicas each. */
    public static final long CACHE_CTRL_OFFSET = CACHE_INFO_OFFSET + DualReplica.SLOTS * CacheInfoOnMedia.SLOT_STRIDE;
    /** key_tail replica 0 (GC's position). */
    public static final long KEY_TAIL_OFFSET = CACHE_CTRL_OFFSET;
    /** dirty_tail replica 0 (writeback's position). */
    public static final long DIRTY_TAIL_OFFSET = KEY_TAIL_OFFSET + DualReplica.SLOTS * CachePosOnMedia.SLOT_STRIDE;
    /** Physical segment 0; segment i starts at {@code SEGMENTS_OFFSET + i * SEGMENT_SIZE}. */
    public static final long SEGMENTS_OFFSET = CACHE_CTRL_OFFSET + AREA_SIZE;

    /** Offset of the segment_info replicas inside a segment. */
    public static final long SEGMENT_INFO_OFFSET = 0;
    /** Offset of the segment control area (gen replicas) inside a segment. */
    public static final long SEGMENT_CTRL_OFFSET =
            SEGMENT_INFO_OFFSET + DualReplica.SLOTS * SegmentInfoOnMedia.SLOT_STRIDE;
    /** Offset of the data area inside a segment. */
    public static final long SEGMENT_DATA_OFFSET = SEGMENT_CTRL_OFFSET + AREA_SIZE;
    /** Size of a segment's data area: 16 MiB - 12 KiB. */
    public static final int SEGMENT_DATA_SIZE = Math.toIntExact(SEGMENT_SIZE - SEGMENT_DATA_OFFSET);

    /** The last offset of a data area where a kset can start: a LAST kset's header always fits after it. */
    public static final int MAX_KSET_OFFSET = SEGMENT_DATA_SIZE - Math.toIntExact(KsetOnMedia.HEADER_SIZE);

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
     */
    public record Options(boolean dataCrc, int cacheMode, int gcPercent) {
        public Options {
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

    private CacheDevice(PmemRegion region, boolean formatted, int superblockFlags, int physicalSegmentCount,
                        SegmentChain chain, MediaState state) {
        this.region = region;
        this.formatted = formatted;
        this.superblockFlags = superblockFlags;
        this.physicalSegmentCount = physicalSegmentCount;
        this.chain = chain;
        this.gens = new AtomicLongArray(chain.segmentCount());
        for (int seg = 0; seg < chain.segmentCount(); seg++) {
            gens.set(seg, chain.loadedGen(seg));
        }
        this.cacheInfoReplica = state.cacheInfoReplica;
        this.keyTailReplica = state.keyTailReplica;
        this.dirtyTailReplica = state.dirtyTailReplica;
        this.cacheInfo = state.cacheInfo;
        this.keyTail = state.keyTail;
        this.dirtyTail = state.dirtyTail;
    }

    /** The replicated records as loaded or written by open; a mutable holder used only during open. */
    private static final class MediaState {
        DualReplica cacheInfoReplica;
        DualReplica keyTailReplica;
        DualReplica dirtyTailReplica;
        CacheInfoOnMedia cacheInfoRecord;
        CacheInfo cacheInfo;
        MemorySegment keyTailBuf;
        MemorySegment dirtyTailBuf;
        CachePos keyTail;
        CachePos dirtyTail;
    }

    /**
     * Opens the cache on {@code region}: formats it when the superblock magic is 0 (or the cache was never completely
     * formatted), otherwise validates superblock, cache_info, segment chain and tails.
     *
     * @throws CacheDeviceTooSmallException if the region is under {@link #MIN_SIZE}
     * @throws CorruptMediaException if a record fails validation
     * @throws DataCrcMismatchException if the existing cache's data_crc differs from {@code options.dataCrc()}
     */
    public static CacheDevice open(PmemRegion region, Options options)
            throws CacheDeviceTooSmallException, CorruptMediaException, DataCrcMismatchException {
        checkSize(region);
        MemorySegment superblockBuf = OnMediaLayout.staging(SuperblockOnMedia.SIZE);
        region.read(SUPERBLOCK_OFFSET, superblockBuf, 0, SuperblockOnMedia.SIZE);
        SuperblockOnMedia superblock = new SuperblockOnMedia().wrap(superblockBuf);
        if (superblock.magic() == 0) {
            formatSuperblock(region, superblockBuf);
        } else {
            superblock.validate(maxSegments(region));
        }
        int segNum = superblock.segNum();

        MediaState state = loadReplicas(region);
        if (state.cacheInfo != null && state.cacheInfo.initDone()) {
            CacheDevice device = load(region, superblock, state);
            if (state.cacheInfo.dataCrc() != options.dataCrc()) {
                throw new DataCrcMismatchException(options.dataCrc(), state.cacheInfo.dataCrc());
            }
            return device;
        }
        SegmentChain chain = formatCache(region, segNum, options, state);
        LOG.info("formatted cache segNum={} nSegs={} dataCrc={} gcPercent={}", segNum, segNum, options.dataCrc(),
                options.gcPercent());
        return new CacheDevice(region, true, superblock.flags(), segNum, chain, state);
    }

    /**
     * Opens an existing cache for inspection (check, dump, recover): validates like {@link #open} but never formats
     * and never writes; a blank or incompletely formatted device is an error here.
     *
     * @throws CacheDeviceTooSmallException if the region is under {@link #MIN_SIZE}
     * @throws CorruptMediaException if a record fails validation or the device holds no formatted cache
     */
    public static CacheDevice inspect(PmemRegion region) throws CacheDeviceTooSmallException, CorruptMediaException {
        checkSize(region);
        MemorySegment superblockBuf = OnMediaLayout.staging(SuperblockOnMedia.SIZE);
        region.read(SUPERBLOCK_OFFSET, superblockBuf, 0, SuperblockOnMedia.SIZE);
        SuperblockOnMedia superblock = new SuperblockOnMedia().wrap(superblockBuf);
        if (superblock.magic() == 0) {
            throw new CorruptMediaException("superblock", CorruptMediaException.NO_SEGMENT, SUPERBLOCK_OFFSET,
                    "magic", "0x" + Long.toHexString(SuperblockOnMedia.MAGIC), "0 (a blank device, never formatted)");
        }
        superblock.validate(maxSegments(region));
        MediaState state = loadReplicas(region);
        if (state.cacheInfo == null || !state.cacheInfo.initDone()) {
            throw new CorruptMediaException("cache_info", CorruptMediaException.NO_SEGMENT, CACHE_INFO_OFFSET,
                    "INIT_DONE", "a replica of a completely formatted cache",
                    state.cacheInfo == null ? "no valid replica" : "INIT_DONE clear");
        }
        return load(region, superblock, state);
    }

    private static void checkSize(PmemRegion region) throws CacheDeviceTooSmallException {
        if (region.size() < MIN_SIZE) {
            throw new CacheDeviceTooSmallException(region.size());
        }
    }

    /** Validates cache_info, the segment chain and the tails of a formatted cache. */
    private static CacheDevice load(PmemRegion region, SuperblockOnMedia superblock, MediaState state)
            throws CorruptMediaException {
        int segNum = superblock.segNum();
        long offset = state.cacheInfoReplica.slotOffset(state.cacheInfoReplica.latestSlot());
        state.cacheInfoRecord.validate(segNum, offset);
        SegmentChain chain = SegmentChain.load(region, segNum, state.cacheInfo);
        int nSegs = state.cacheInfo.nSegs();
        state.keyTail = validateTail("key_tail", state.keyTailReplica, state.keyTailBuf, nSegs);
        state.dirtyTail = validateTail("dirty_tail", state.dirtyTailReplica, state.dirtyTailBuf, nSegs);
        LOG.debug("opened cache segNum={} nSegs={} keyTail={} dirtyTail={}", segNum, nSegs, state.keyTail,
                state.dirtyTail);
        return new CacheDevice(region, false, superblock.flags(), segNum, chain, state);
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
        return segmentOffset(chain.physicalId(seg)) + SEGMENT_DATA_OFFSET;
    }

    /** Region offset of physical segment {@code physicalId}. */
    public static long segmentOffset(int physicalId) {
        return SEGMENTS_OFFSET + physicalId * SEGMENT_SIZE;
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
            writeCacheInfoReplica(cacheInfoReplica, info);
            cacheInfo = info;
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
        checkPos(pos);
        synchronized (keyTailReplica) {
            writePos(keyTailReplica, pos);
            keyTail = pos;
        }
    }

    /** Persists the dirty tail (writeback's single writer; rule 4: after the backing flush). */
    public void writeDirtyTail(CachePos pos) {
        checkPos(pos);
        synchronized (dirtyTailReplica) {
            writePos(dirtyTailReplica, pos);
            dirtyTail = pos;
        }
    }

    @Override
    public String toString() {
        return "CacheDevice[segNum=" + physicalSegmentCount + " nSegs=" + segmentCount() + " keyTail=" + keyTail
                + " dirtyTail=" + dirtyTail + " " + region + "]";
    }

    private static int maxSegments(PmemRegion region) {
        return (int) Math.min((region.size() - SEGMENTS_OFFSET) / SEGMENT_SIZE, SEGMENTS_MAX);
    }

    private static void formatSuperblock(PmemRegion region, MemorySegment superblockBuf) {
        new SuperblockOnMedia().wrap(superblockBuf).flags(0).magic(SuperblockOnMedia.MAGIC)
                .segNum(maxSegments(region)).seal();
        long metaSize = SEGMENTS_OFFSET - CACHE_INFO_OFFSET;
        region.zero(CACHE_INFO_OFFSET, metaSize);
        region.persist(CACHE_INFO_OFFSET, metaSize); // format step 1: no stale cache_info behind a new superblock
        region.write(SUPERBLOCK_OFFSET, superblockBuf, 0, SuperblockOnMedia.SIZE);
        region.persist(SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE); // format step 2
    }

    private static MediaState loadReplicas(PmemRegion region) {
        MediaState state = new MediaState();
        state.cacheInfoReplica = new DualReplica(region, CACHE_INFO_OFFSET, CacheInfoOnMedia.SIZE,
                CacheInfoOnMedia.SLOT_STRIDE);
        MemorySegment infoBuf = OnMediaLayout.staging(CacheInfoOnMedia.SIZE);
        if (state.cacheInfoReplica.loadLatest(infoBuf)) {
            state.cacheInfoRecord = new CacheInfoOnMedia().wrap(infoBuf);
            state.cacheInfo = state.cacheInfoRecord.decode();
        }
        state.keyTailReplica = tailReplica(region, KEY_TAIL_OFFSET);
        state.keyTailBuf = loadTail(state.keyTailReplica);
        state.dirtyTailReplica = tailReplica(region, DIRTY_TAIL_OFFSET);
        state.dirtyTailBuf = loadTail(state.dirtyTailReplica);
        return state;
    }

    private static DualReplica tailReplica(PmemRegion region, long offset) {
        return new DualReplica(region, offset, CachePosOnMedia.SIZE, CachePosOnMedia.SLOT_STRIDE);
    }

    /** The newest valid tail record, or null when neither replica is valid. */
    private static MemorySegment loadTail(DualReplica replica) {
        MemorySegment buf = OnMediaLayout.staging(CachePosOnMedia.SIZE);
        return replica.loadLatest(buf) ? buf : null;
    }

    private static CachePos validateTail(String name, DualReplica replica, MemorySegment buf, int nSegs)
            throws CorruptMediaException {
        if (buf == null) {
            throw new CorruptMediaException(name, CorruptMediaException.NO_SEGMENT, replica.slotOffset(0), "crc",
                    "a replica with a valid crc", "none");
        }
        return new CachePosOnMedia().wrap(buf).decodeValid(name, nSegs, replica.slotOffset(replica.latestSlot()));
    }

    private static SegmentChain formatCache(PmemRegion region, int segNum, Options options, MediaState state) {
        SegmentChain chain = SegmentChain.format(region, segNum); // format step 3
        CachePos start = new CachePos(0, 0);
        writePos(state.dirtyTailReplica, start); // format step 4: dirty_tail, then key_tail
        writePos(state.keyTailReplica, start);
        state.dirtyTail = start;
        state.keyTail = start;
        CacheInfo info = new CacheInfo(0, segNum, options.dataCrc(), true, options.cacheMode(), options.gcPercent(),
                0);
        writeCacheInfoReplica(state.cacheInfoReplica, info); // format step 5: the commit point
        // Step 6: fill the other slot too, so one damaged replica can never make the cache look new and get it
        // formatted over; dm-pcache gets its second copy from the INIT_DONE rewrite at the end of every start.
        writeCacheInfoReplica(state.cacheInfoReplica, info);
        state.cacheInfo = info;
        return chain;
    }

    private static void writeCacheInfoReplica(DualReplica replica, CacheInfo info) {
        MemorySegment staging = OnMediaLayout.staging(CacheInfoOnMedia.SIZE);
        new CacheInfoOnMedia().wrap(staging).encode(info);
        replica.writeNext(staging);
    }

    private static void writePos(DualReplica replica, CachePos pos) {
        MemorySegment staging = OnMediaLayout.staging(CachePosOnMedia.SIZE);
        new CachePosOnMedia().wrap(staging).encode(pos);
        replica.writeNext(staging);
    }

    private void checkPos(CachePos pos) {
        if (pos.seg() >= segmentCount() || pos.off() > MAX_KSET_OFFSET || pos.off() % Long.BYTES != 0) {
            throw new IllegalArgumentException("tail " + pos + " outside " + segmentCount() + " segments of "
                    + SEGMENT_DATA_SIZE + " bytes");
        }
    }
}
