package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * The cache's segments in chain order: logical cache segment i is the i-th segment reached from cache_info.seg_id
 * through segment_info.next_seg. Holds each segment's physical id and gen replica; formats a new chain or loads and
 * validates an existing one.
 *
 * <p>Persistence order of {@link #format}, per segment, in ascending physical order (logical id = physical id):
 * <ol>
 *   <li>zero the 12 KiB header and the first kset header of the data area (flushed; made durable by the next
 *       drain);</li>
 *   <li>gen 0 (persisted);</li>
 *   <li>segment_info CACHE_DATA without HAS_NEXT (persisted);</li>
 *   <li>the previous segment's segment_info with HAS_NEXT and next_seg (persisted).</li>
 * </ol>
 * None of it is reachable until cache_info with INIT_DONE is written after the chain, so a cut anywhere here leaves a
 * device that is formatted again on the next open.
 *
 * <p>Threading: built by one thread during open; afterwards the arrays are read-only and the gen replicas are used
 * under their own monitor by {@link CacheDevice}.
 */
final class SegmentChain {
    private final int[] physicalIds;
    private final DualReplica[] genReplicas;
    private final long[] loadedGens;

    private SegmentChain(int[] physicalIds, DualReplica[] genReplicas, long[] loadedGens) {
        this.physicalIds = physicalIds;
        this.genReplicas = genReplicas;
        this.loadedGens = loadedGens;
    }

    /** Writes a fresh chain of {@code nSegs} segments, physical ids 0 .. nSegs - 1, all at gen 0. */
    static SegmentChain format(PmemRegion region, int nSegs) {
        int[] physicalIds = new int[nSegs];
        DualReplica[] genReplicas = new DualReplica[nSegs];
        MemorySegment infoBuf = OnMediaLayout.staging(SegmentInfoOnMedia.SIZE);
        MemorySegment genBuf = OnMediaLayout.staging(SegmentGenOnMedia.SIZE);
        SegmentInfoOnMedia info = new SegmentInfoOnMedia();
        SegmentGenOnMedia gen = new SegmentGenOnMedia();
        DualReplica previousInfo = null;
        for (int seg = 0; seg < nSegs; seg++) {
            long base = CacheDeviceLayout.segmentOffset(seg);
            // Both replicas of everything in the header become invalid, so fresh replica state (slot 0, seq 0) is
            // right; the zero kset header is dm-pcache's "clear outdated kset".
            region.zero(base, CacheDeviceLayout.SEGMENT_DATA_OFFSET + KsetOnMedia.HEADER_SIZE);
            region.flush(base, CacheDeviceLayout.SEGMENT_DATA_OFFSET + KsetOnMedia.HEADER_SIZE);

            genReplicas[seg] = genReplica(region, seg);
            gen.wrap(genBuf.fill((byte) 0)).gen(0);
            genReplicas[seg].writeNext(genBuf);

            DualReplica infoReplica = infoReplica(region, seg);
            info.wrap(infoBuf.fill((byte) 0)).type(SegmentInfoOnMedia.TYPE_CACHE_DATA);
            infoReplica.writeNext(infoBuf);

            if (previousInfo != null) {
                info.wrap(infoBuf.fill((byte) 0)).type(SegmentInfoOnMedia.TYPE_CACHE_DATA).linkNext(seg);
                previousInfo.writeNext(infoBuf);
            }
            previousInfo = infoReplica;
            physicalIds[seg] = seg;
        }
        return new SegmentChain(physicalIds, genReplicas, new long[nSegs]);
    }

    /**
     * Walks the chain of {@code info.nSegs()} segments from {@code info.segId()}, validating every link, and loads each
     * segment's gen (0 when no replica is valid, as dm-pcache). Writes nothing.
     */
    static SegmentChain load(PmemRegion region, int segNum, CacheInfo cacheInfo) throws CorruptMediaException {
        int nSegs = cacheInfo.nSegs();
        int[] physicalIds = new int[nSegs];
        DualReplica[] genReplicas = new DualReplica[nSegs];
        long[] gens = new long[nSegs];
        MemorySegment infoBuf = OnMediaLayout.staging(SegmentInfoOnMedia.SIZE);
        MemorySegment genBuf = OnMediaLayout.staging(SegmentGenOnMedia.SIZE);
        SegmentInfoOnMedia info = new SegmentInfoOnMedia();
        BitSet visited = new BitSet(segNum);
        int physical = cacheInfo.segId();
        for (int seg = 0; seg < nSegs; seg++) {
            if (visited.get(physical)) {
                // Ids were range-checked before they were followed, so a repeat is a cycle shorter than n_segs.
                throw new CorruptMediaException("segment_info", physicalIds[seg - 1],
                        CacheDeviceLayout.segmentOffset(physicalIds[seg - 1]), "next_seg",
                        "a segment not yet on the chain (logical segment " + seg + " of " + nSegs + ")",
                        physical + " (a cycle)");
            }
            visited.set(physical);
            physicalIds[seg] = physical;

            DualReplica infoReplica = infoReplica(region, physical);
            if (!infoReplica.loadLatest(infoBuf)) {
                throw new CorruptMediaException("segment_info", physical, infoReplica.slotOffset(0), "crc",
                        "a replica with a valid crc", "none");
            }
            info.wrap(infoBuf);
            long infoOffset = infoReplica.slotOffset(infoReplica.latestSlot());
            if (info.type() != SegmentInfoOnMedia.TYPE_CACHE_DATA) {
                throw new CorruptMediaException("segment_info", physical, infoOffset, "flags.type",
                        String.valueOf(SegmentInfoOnMedia.TYPE_CACHE_DATA) + " (CACHE_DATA)",
                        String.valueOf(info.type()));
            }
            genReplicas[seg] = genReplica(region, physical);
            gens[seg] = genReplicas[seg].loadLatest(genBuf) ? new SegmentGenOnMedia().wrap(genBuf).gen() : 0;
            if (seg + 1 < nSegs) {
                physical = nextOnChain(info, physical, infoOffset, seg, nSegs, segNum);
            }
        }
        return new SegmentChain(physicalIds, genReplicas, gens);
    }

    private static int nextOnChain(SegmentInfoOnMedia info, int physical, long infoOffset, int seg, int nSegs,
                                   int segNum) throws CorruptMediaException {
        if (!info.hasNext()) {
            throw new CorruptMediaException("segment_info", physical, infoOffset, "flags.HAS_NEXT",
                    "set (logical segment " + seg + " of " + nSegs + " is not the last)", "clear (broken chain)");
        }
        int next = info.nextSeg();
        if (Integer.compareUnsigned(next, segNum) >= 0) {
            throw new CorruptMediaException("segment_info", physical, infoOffset, "next_seg",
                    "< seg_num " + segNum, Integer.toUnsignedString(next));
        }
        return next;
    }

    int segmentCount() {
        return physicalIds.length;
    }

    int physicalId(int seg) {
        return physicalIds[seg];
    }

    DualReplica genReplica(int seg) {
        return genReplicas[seg];
    }

    long loadedGen(int seg) {
        return loadedGens[seg];
    }

    private static DualReplica infoReplica(PmemRegion region, int physical) {
        return new DualReplica(region,
                CacheDeviceLayout.segmentOffset(physical) + CacheDeviceLayout.SEGMENT_INFO_OFFSET,
                SegmentInfoOnMedia.SIZE, SegmentInfoOnMedia.SLOT_STRIDE);
    }

    private static DualReplica genReplica(PmemRegion region, int physical) {
        return new DualReplica(region,
                CacheDeviceLayout.segmentOffset(physical) + CacheDeviceLayout.SEGMENT_CTRL_OFFSET,
                SegmentGenOnMedia.SIZE, SegmentGenOnMedia.SLOT_STRIDE);
    }
}
