package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Rewrites records of a cache image with valid CRCs, to build images a correct writer never produces (corrupt
 * geometry, broken or cyclic chains, out-of-range tails) or a kernel-formatted variant (non-ascending chain).
 */
final class OnMediaEditor {
    private final PmemRegion region;

    OnMediaEditor(PmemRegion region) {
        this.region = region;
    }

    private static MemorySegment staging(long size) {
        return MemorySegment.ofArray(new byte[(int) size]);
    }

    /** Rewrites the superblock with the given fields and a valid CRC. */
    void superblock(int flags, long magic, int segNum) {
        MemorySegment buf = staging(SuperblockOnMedia.SIZE);
        new SuperblockOnMedia().wrap(buf).flags(flags).magic(magic).segNum(segNum).seal();
        region.write(CacheDeviceLayout.SUPERBLOCK_OFFSET, buf, 0, SuperblockOnMedia.SIZE);
        region.persist(CacheDeviceLayout.SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE);
    }

    SuperblockOnMedia readSuperblock() {
        MemorySegment buf = staging(SuperblockOnMedia.SIZE);
        region.read(CacheDeviceLayout.SUPERBLOCK_OFFSET, buf, 0, SuperblockOnMedia.SIZE);
        return new SuperblockOnMedia().wrap(buf);
    }

    /** Writes the next cache_info replica with raw fields. */
    void cacheInfo(int segId, int nSegs, int flags) {
        DualReplica replica = new DualReplica(region, CacheDeviceLayout.CACHE_INFO_OFFSET, CacheInfoOnMedia.SIZE,
                CacheInfoOnMedia.SLOT_STRIDE);
        MemorySegment buf = staging(CacheInfoOnMedia.SIZE);
        replica.loadLatest(buf);
        new CacheInfoOnMedia().wrap(buf).segId(segId).nSegs(nSegs).flags(flags);
        replica.writeNext(buf);
    }

    CacheInfoOnMedia readCacheInfo() {
        DualReplica replica = new DualReplica(region, CacheDeviceLayout.CACHE_INFO_OFFSET, CacheInfoOnMedia.SIZE,
                CacheInfoOnMedia.SLOT_STRIDE);
        MemorySegment buf = staging(CacheInfoOnMedia.SIZE);
        replica.loadLatest(buf);
        return new CacheInfoOnMedia().wrap(buf);
    }

    /** Writes the next segment_info replica of physical segment {@code physical} with raw fields. */
    void segmentInfo(int physical, int flags, int nextSeg) {
        DualReplica replica = segmentInfoReplica(physical);
        MemorySegment buf = staging(SegmentInfoOnMedia.SIZE);
        replica.loadLatest(buf);
        new SegmentInfoOnMedia().wrap(buf).flags(flags).nextSeg(nextSeg);
        replica.writeNext(buf);
    }

    SegmentInfoOnMedia readSegmentInfo(int physical) {
        MemorySegment buf = staging(SegmentInfoOnMedia.SIZE);
        segmentInfoReplica(physical).loadLatest(buf);
        return new SegmentInfoOnMedia().wrap(buf);
    }

    private DualReplica segmentInfoReplica(int physical) {
        return new DualReplica(region,
                CacheDeviceLayout.segmentOffset(physical) + CacheDeviceLayout.SEGMENT_INFO_OFFSET,
                SegmentInfoOnMedia.SIZE, SegmentInfoOnMedia.SLOT_STRIDE);
    }

    /** Writes the next replica of the tail at {@code tailOffset} with raw fields. */
    void tail(long tailOffset, int cacheSegId, int segOff) {
        DualReplica replica = new DualReplica(region, tailOffset, CachePosOnMedia.SIZE, CachePosOnMedia.SLOT_STRIDE);
        MemorySegment buf = staging(CachePosOnMedia.SIZE);
        replica.loadLatest(buf);
        new CachePosOnMedia().wrap(buf).cacheSegId(cacheSegId).segOff(segOff);
        replica.writeNext(buf);
    }

    /** Inverts one byte in place, without fixing any CRC. */
    void flipByte(long offset) {
        MemorySegment one = staging(1);
        region.read(offset, one, 0, 1);
        one.set(ValueLayout.JAVA_BYTE, 0, (byte) ~one.get(ValueLayout.JAVA_BYTE, 0));
        region.write(offset, one, 0, 1);
        region.persist(offset, 1);
    }

    /** The metadata bytes of an image: everything before the segments and every segment's header. */
    static byte[] metadata(CrashSimPmemRegion region, int segNum) {
        int headerSize = (int) (CacheDeviceLayout.SEGMENT_DATA_OFFSET + KsetOnMedia.HEADER_SIZE);
        int deviceHeader = (int) CacheDeviceLayout.SEGMENTS_OFFSET;
        byte[] all = new byte[deviceHeader + segNum * headerSize];
        System.arraycopy(region.durableBytes(0, deviceHeader), 0, all, 0, deviceHeader);
        for (int seg = 0; seg < segNum; seg++) {
            byte[] header = region.durableBytes(CacheDeviceLayout.segmentOffset(seg), headerSize);
            System.arraycopy(header, 0, all, deviceHeader + seg * headerSize, headerSize);
        }
        return all;
    }
}
