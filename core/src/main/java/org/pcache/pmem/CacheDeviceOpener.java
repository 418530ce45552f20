package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import org.pcache.pmem.CacheDevice.Replicated;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Brings a cache device up (dm-pcache's cache_dev_start with cache_info_init, cache_tail_init and the segment
 * chain): reads the superblock and the replicated records, formats the device when it holds no completely formatted
 * cache, otherwise validates everything up to (not including) kset replay, which belongs to the cache, and hands
 * back the {@link CacheDevice} the cache runs on.
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
 *
 * <p>When it formats: a superblock magic of 0 (a blank device), or a valid superblock with no valid cache_info
 * replica and slot 0 still zero. Step 5 writes slot 1 and step 6 slot 0, and neither slot is zeroed again after step
 * 1, so a zero slot 0 beside an invalid slot 1 is a format cut before its commit point. Two bad replicas otherwise
 * mean a cache whose cache_info was lost: {@link CacheInfoLostException}, never a format over it. With
 * {@link CacheFormat#ALWAYS} the superblock magic is zeroed and persisted first, so a cut anywhere in that format
 * leaves a blank device that the next open formats.
 *
 * <p>Validation on open: superblock magic, CRC, endian flag, seg_num against the device size; cache_info n_segs,
 * seg_id and gc_percent; every segment id on the chain, a missing HAS_NEXT, a cycle; both tails' segment and offset.
 * Each failure throws {@link CorruptMediaException} naming the field and value before anything is written.
 *
 * <p>Threading: single-threaded; nothing else may use the region while it runs.
 */
final class CacheDeviceOpener {
    private static final Logger LOG = LoggerFactory.getLogger(CacheDeviceOpener.class);

    private CacheDeviceOpener() {
    }

    /** The replicated records as read at open, before they are validated or formatted. */
    private record Loaded(DualReplica cacheInfoReplica, CacheInfoOnMedia cacheInfoRecord, DualReplica keyTailReplica,
                          MemorySegment keyTailBuf, DualReplica dirtyTailReplica, MemorySegment dirtyTailBuf) {

        /** The decoded cache_info, or null when neither replica is valid. */
        CacheInfo cacheInfo() {
            return cacheInfoRecord == null ? null : cacheInfoRecord.decode();
        }
    }

    /** See {@link CacheDevice#open}. */
    static CacheDevice open(PmemRegion region, CacheDevice.Options options)
            throws CacheDeviceTooSmallException, CorruptMediaException, DataCrcMismatchException {
        checkSize(region);
        if (options.format() == CacheFormat.ALWAYS) {
            // One aligned 8-byte store, so a cut leaves the old magic or 0, never a torn superblock.
            long magic = CacheDeviceLayout.SUPERBLOCK_OFFSET + SuperblockOnMedia.MAGIC_OFFSET;
            region.zero(magic, Long.BYTES);
            region.persist(magic, Long.BYTES); // a blank device from here on
        }
        MemorySegment superblockBuf = readSuperblock(region);
        SuperblockOnMedia superblock = new SuperblockOnMedia().wrap(superblockBuf);
        if (superblock.magic() == 0) {
            formatSuperblock(region, superblockBuf);
        } else {
            superblock.validate(CacheDeviceLayout.maxSegments(region.size()));
        }
        Loaded loaded = loadRecords(region);
        CacheInfo info = loaded.cacheInfo();
        if (info == null) {
            requireFormatNeverCommitted(region, loaded.cacheInfoReplica());
        }
        if (info != null && info.initDone()) {
            CacheDevice device = validate(region, superblock, loaded, info);
            if (info.dataCrc() != options.dataCrc()) {
                throw new DataCrcMismatchException(options.dataCrc(), info.dataCrc());
            }
            return device;
        }
        return format(region, superblock, loaded, options);
    }

    /** See {@link CacheDevice#inspect}. */
    static CacheDevice inspect(PmemRegion region) throws CacheDeviceTooSmallException, CorruptMediaException {
        checkSize(region);
        SuperblockOnMedia superblock = new SuperblockOnMedia().wrap(readSuperblock(region));
        if (superblock.magic() == 0) {
            throw new CorruptMediaException("superblock", CorruptMediaException.NO_SEGMENT,
                    CacheDeviceLayout.SUPERBLOCK_OFFSET, "magic", "0x" + Long.toHexString(SuperblockOnMedia.MAGIC),
                    "0 (a blank device, never formatted)");
        }
        superblock.validate(CacheDeviceLayout.maxSegments(region.size()));
        Loaded loaded = loadRecords(region);
        CacheInfo info = loaded.cacheInfo();
        if (info == null || !info.initDone()) {
            throw new CorruptMediaException("cache_info", CorruptMediaException.NO_SEGMENT,
                    CacheDeviceLayout.CACHE_INFO_OFFSET, "INIT_DONE", "a replica of a completely formatted cache",
                    info == null ? "no valid replica" : "INIT_DONE clear");
        }
        return validate(region, superblock, loaded, info);
    }

    /**
     * Throws {@link CacheInfoLostException} naming both replicas unless slot 0 is all zero, that is unless no format
     * of this device ever got past its commit point.
     */
    private static void requireFormatNeverCommitted(PmemRegion region, DualReplica replica)
            throws CacheInfoLostException {
        MemorySegment buf = OnMediaLayout.staging(CacheInfoOnMedia.SIZE);
        List<CacheInfoLostException.Copy> copies = new ArrayList<>(DualReplica.SLOTS);
        for (int slot = 0; slot < DualReplica.SLOTS; slot++) {
            long offset = replica.slotOffset(slot);
            region.read(offset, buf, 0, CacheInfoOnMedia.SIZE);
            boolean zero = buf.asSlice(0, CacheInfoOnMedia.SIZE).mismatch(
                    MemorySegment.ofArray(new byte[(int) CacheInfoOnMedia.SIZE])) < 0;
            if (slot == 0 && zero) {
                return;
            }
            copies.add(new CacheInfoLostException.Copy(slot, offset, zero ? "all zero"
                    : String.format("crc 0x%08x, computed 0x%08x (seq %d)", MetaHeader.crc(buf),
                            MetaHeader.computeCrc(buf, CacheInfoOnMedia.SIZE), MetaHeader.seq(buf))));
        }
        throw new CacheInfoLostException(copies);
    }

    private static void checkSize(PmemRegion region) throws CacheDeviceTooSmallException {
        if (region.size() < CacheDeviceLayout.MIN_SIZE) {
            throw new CacheDeviceTooSmallException(region.size());
        }
    }

    private static MemorySegment readSuperblock(PmemRegion region) {
        MemorySegment buf = OnMediaLayout.staging(SuperblockOnMedia.SIZE);
        region.read(CacheDeviceLayout.SUPERBLOCK_OFFSET, buf, 0, SuperblockOnMedia.SIZE);
        return buf;
    }

    /** Format steps 1 and 2: a new superblock over zeroed cache_info and cache_ctrl. */
    private static void formatSuperblock(PmemRegion region, MemorySegment superblockBuf) {
        new SuperblockOnMedia().wrap(superblockBuf).flags(0).magic(SuperblockOnMedia.MAGIC)
                .segNum(CacheDeviceLayout.maxSegments(region.size())).seal();
        long metaSize = CacheDeviceLayout.SEGMENTS_OFFSET - CacheDeviceLayout.CACHE_INFO_OFFSET;
        region.zero(CacheDeviceLayout.CACHE_INFO_OFFSET, metaSize);
        region.persist(CacheDeviceLayout.CACHE_INFO_OFFSET, metaSize); // step 1: no stale cache_info behind it
        region.write(CacheDeviceLayout.SUPERBLOCK_OFFSET, superblockBuf, 0, SuperblockOnMedia.SIZE);
        region.persist(CacheDeviceLayout.SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE); // step 2
    }

    /** Format steps 3 to 6 on a device whose superblock is in place. */
    private static CacheDevice format(PmemRegion region, SuperblockOnMedia superblock, Loaded loaded,
                                      CacheDevice.Options options) {
        int segNum = superblock.segNum();
        SegmentChain chain = SegmentChain.format(region, segNum); // step 3
        CachePos start = new CachePos(0, 0);
        CacheInfo info = new CacheInfo(0, segNum, options.dataCrc(), true, options.cacheMode(), options.gcPercent(),
                0);
        // The device starts out holding the values the remaining steps write.
        CacheDevice device = new CacheDevice(region, true, superblock.flags(), segNum, chain,
                new Replicated<>(loaded.cacheInfoReplica(), info), new Replicated<>(loaded.keyTailReplica(), start),
                new Replicated<>(loaded.dirtyTailReplica(), start));
        device.writeDirtyTail(start); // step 4: dirty_tail, then key_tail
        device.writeKeyTail(start);
        device.writeCacheInfo(info); // step 5: the commit point
        // Step 6: fill the other slot too, so one damaged replica can never make the cache look new and get it
        // formatted over; dm-pcache gets its second copy from the INIT_DONE rewrite at the end of every start.
        device.writeCacheInfo(info);
        LOG.info("formatted cache segNum={} nSegs={} dataCrc={} gcPercent={}", segNum, segNum, options.dataCrc(),
                options.gcPercent());
        return device;
    }

    /** Validates cache_info, the segment chain and the tails of a formatted cache. */
    private static CacheDevice validate(PmemRegion region, SuperblockOnMedia superblock, Loaded loaded,
                                        CacheInfo info) throws CorruptMediaException {
        int segNum = superblock.segNum();
        DualReplica infoReplica = loaded.cacheInfoReplica();
        loaded.cacheInfoRecord().validate(segNum, infoReplica.slotOffset(infoReplica.latestSlot()));
        SegmentChain chain = SegmentChain.load(region, segNum, info);
        int nSegs = info.nSegs();
        CachePos keyTail = validateTail("key_tail", loaded.keyTailReplica(), loaded.keyTailBuf(), nSegs);
        CachePos dirtyTail = validateTail("dirty_tail", loaded.dirtyTailReplica(), loaded.dirtyTailBuf(), nSegs);
        LOG.debug("opened cache segNum={} nSegs={} keyTail={} dirtyTail={}", segNum, nSegs, keyTail, dirtyTail);
        return new CacheDevice(region, false, superblock.flags(), segNum, chain,
                new Replicated<>(infoReplica, info), new Replicated<>(loaded.keyTailReplica(), keyTail),
                new Replicated<>(loaded.dirtyTailReplica(), dirtyTail));
    }

    private static Loaded loadRecords(PmemRegion region) {
        DualReplica infoReplica = new DualReplica(region, CacheDeviceLayout.CACHE_INFO_OFFSET, CacheInfoOnMedia.SIZE,
                CacheInfoOnMedia.SLOT_STRIDE);
        MemorySegment infoBuf = OnMediaLayout.staging(CacheInfoOnMedia.SIZE);
        CacheInfoOnMedia infoRecord = infoReplica.loadLatest(infoBuf) ? new CacheInfoOnMedia().wrap(infoBuf) : null;
        DualReplica keyTailReplica = tailReplica(region, CacheDeviceLayout.KEY_TAIL_OFFSET);
        DualReplica dirtyTailReplica = tailReplica(region, CacheDeviceLayout.DIRTY_TAIL_OFFSET);
        return new Loaded(infoReplica, infoRecord, keyTailReplica, loadTail(keyTailReplica), dirtyTailReplica,
                loadTail(dirtyTailReplica));
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
}
