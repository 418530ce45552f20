package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * Rebuilds the cache's memory from the kset log at open (dm-pcache's cache_replay): walks from key_tail to the first
 * invalid kset, inserting every valid key into the index in log order (so the newest write wins), marking the segments
 * in use and taking one reference per live key record. Where the walk ends is the key head.
 *
 * <p>Every 2026 hardening check applies: a LAST kset must name a segment below n_segs and the chain may hop at most
 * n_segs times; key_num and the kset's extent must fit the segment; a key needs len > 0, 512-byte alignment, a range
 * inside the backing device and one 4 MiB stretch, a segment below n_segs, data inside the data area, and a generation
 * no newer than its segment's; dirty_tail must lie on the walked chain. Beyond dm-pcache, no segment may be both in
 * the walked log and named by a live key: a LAST kset chaining into cached data would otherwise put the key head
 * there, and the next kset would overwrite that data. Any failure stops the open with a {@link CorruptMediaException}
 * before anything is written.
 *
 * <p>Stale keys (generation older than their segment's) are skipped and hold no reference; GC skips them the same way,
 * which keeps every segment's reference count equal to its live key records.
 *
 * <p>Threading: runs once, on the opening thread, before the cache is shared.
 */
final class Replay {

    private final CacheDevice device;
    private final PmemRegion region;
    private final SegmentMap segments;
    private final KeyTree tree;
    private final long backingSize;
    private final boolean dataCrc;
    private final MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
    private final KsetOnMedia kset = new KsetOnMedia().wrap(staging);
    private final KeyOnMedia record = new KeyOnMedia();
    /** Segments the walked log occupies, and segments live keys point into: a segment is never both. */
    private final BitSet logSegs = new BitSet();
    private final BitSet dataSegs = new BitSet();
    private long ksets;
    private long keys;
    private long staleKeys;

    Replay(CacheDevice device, SegmentMap segments, KeyTree tree, long backingSize, boolean dataCrc) {
        this.device = device;
        this.region = device.region();
        this.segments = segments;
        this.tree = tree;
        this.backingSize = backingSize;
        this.dataCrc = dataCrc;
    }

    /** Replays the log; returns the key head. */
    CachePos run() throws CorruptMediaException {
        CachePos pos = device.keyTail();
        CachePos dirtyTail = device.dirtyTail();
        boolean dirtyTailReached = false;
        int hops = 0;
        segments.markUsed(pos.seg());
        logSegs.set(pos.seg());
        while (true) {
            dirtyTailReached |= pos.equals(dirtyTail);
            KsetOnMedia.Status status = kset.decode(region, device.dataOffset(pos.seg()) + pos.off(),
                    CacheDevice.SEGMENT_DATA_SIZE - pos.off());
            switch (status) {
                case NORMAL -> {
                    replayKeys(pos);
                    ksets++;
                    pos = new CachePos(pos.seg(), pos.off() + kset.onMediaSize());
                }
                case LAST -> {
                    int next = kset.nextCacheSegId();
                    if (Integer.toUnsignedLong(next) >= device.segmentCount()) {
                        throw corrupt(pos, "kset", "next_cache_seg_id", "< " + device.segmentCount(),
                                Integer.toUnsignedString(next));
                    }
                    if (++hops > device.segmentCount()) {
                        throw corrupt(pos, "kset", "LAST chain", "at most " + device.segmentCount() + " hops",
                                "a cycle through segment " + next);
                    }
                    if (dataSegs.get(next)) {
                        throw corrupt(pos, "kset", "next_cache_seg_id", "a segment holding no live keys",
                                "segment " + next + ", which holds live keys");
                    }
                    pos = new CachePos(next, 0);
                    segments.markUsed(next);
                    logSegs.set(next);
                }
                case NO_MAGIC, CRC_MISMATCH -> {
                    return end(pos, dirtyTail, dirtyTailReached);
                }
                case KEY_NUM_OUT_OF_RANGE -> throw corrupt(pos, "kset", "key_num", "<= " + KsetOnMedia.KEYS_MAX,
                        Integer.toUnsignedString(kset.keyNum()));
                case OVERRUNS_DATA_AREA -> throw corrupt(pos, "kset", "key_num",
                        "a kset inside the data area", Integer.toUnsignedString(kset.keyNum()) + " keys at offset "
                                + pos.off());
            }
        }
    }

    long ksets() {
        return ksets;
    }

    long keys() {
        return keys;
    }

    long staleKeys() {
        return staleKeys;
    }

    private CachePos end(CachePos pos, CachePos dirtyTail, boolean dirtyTailReached) throws CorruptMediaException {
        if (!dirtyTailReached) {
            throw new CorruptMediaException("dirty_tail", CorruptMediaException.NO_SEGMENT,
                    CacheDevice.DIRTY_TAIL_OFFSET, "position", "a kset boundary between key_tail "
                    + device.keyTail() + " and key_head " + pos, dirtyTail.toString());
        }
        return pos;
    }

    private void replayKeys(CachePos pos) throws CorruptMediaException {
        int keyNum = kset.keyNum();
        for (int i = 0; i < keyNum; i++) {
            kset.key(i, record);
            CacheKey key = decode(pos, i);
            CacheSegment seg = key.seg;
            if (key.segGen < seg.gen()) {
                staleKeys++;
                continue;
            }
            if (logSegs.get(seg.id())) {
                throw corruptKey(pos, i, "cache_seg_id", "a data segment", "kset log segment " + seg.id());
            }
            if (dataCrc) {
                verifyCrc(pos, i, key);
            }
            tree.subtree(key.off).insert(key);
            dataSegs.set(seg.id());
            segments.markUsed(seg.id());
            seg.retain();
            keys++;
        }
    }

    private CacheKey decode(CachePos pos, int index) throws CorruptMediaException {
        long off = record.off();
        long len = Integer.toUnsignedLong(record.len());
        int flags = record.flags();
        long segId = Integer.toUnsignedLong(record.cacheSegId());
        long segOff = Integer.toUnsignedLong(record.cacheSegOff());
        long gen = record.segGen();
        if (len == 0 || len % 512 != 0) {
            throw corruptKey(pos, index, "len", "a positive multiple of 512", Long.toString(len));
        }
        if (off < 0 || off % 512 != 0 || off > backingSize - len) {
            throw corruptKey(pos, index, "off", "a 512-aligned range inside the backing device of " + backingSize
                    + " bytes", off + "+" + len);
        }
        if (KeyTree.stretchEnd(off) < off + len) {
            throw corruptKey(pos, index, "off", "a range inside one 4 MiB stretch", off + "+" + len);
        }
        if ((flags & ~KeyOnMedia.FLAG_CLEAN) != 0) {
            throw corruptKey(pos, index, "flags", "0 or CLEAN", "0x" + Integer.toHexString(flags));
        }
        if (segId >= device.segmentCount()) {
            throw corruptKey(pos, index, "cache_seg_id", "< " + device.segmentCount(), Long.toString(segId));
        }
        if (segOff + len > CacheDevice.SEGMENT_DATA_SIZE) {
            throw corruptKey(pos, index, "cache_seg_off", "data inside the " + CacheDevice.SEGMENT_DATA_SIZE
                    + "-byte data area", segOff + "+" + len);
        }
        CacheSegment seg = segments.segment((int) segId);
        if (Long.compareUnsigned(gen, seg.gen()) > 0) {
            throw corruptKey(pos, index, "seg_gen", "<= " + seg.gen() + " (the segment's generation)",
                    Long.toUnsignedString(gen));
        }
        CacheKey key = new CacheKey(off, (int) len, flags);
        key.place(seg, (int) segOff, gen);
        key.crcSegOff = (int) segOff;
        key.crcLen = dataCrc ? (int) len : 0;
        key.dataCrc = record.dataCrc();
        return key;
    }

    private void verifyCrc(CachePos pos, int index, CacheKey key) throws CorruptMediaException {
        int actual = Crc32c.crc(region.view(key.dataRegionOffset(), key.len), 0, key.len);
        if (actual != key.dataCrc) {
            throw corruptKey(pos, index, "data_crc", "0x" + Integer.toHexString(key.dataCrc),
                    "0x" + Integer.toHexString(actual) + " over seg=" + key.seg.id() + " seg_off=" + key.segOff
                            + " len=" + key.len);
        }
    }

    private CorruptMediaException corruptKey(CachePos pos, int index, String field, String expected, String found) {
        long at = device.dataOffset(pos.seg()) + pos.off() + KsetOnMedia.keyOffset(index);
        return new CorruptMediaException("key " + index + " of kset at " + pos, device.physicalSegmentId(pos.seg()),
                at, field, expected, found);
    }

    private CorruptMediaException corrupt(CachePos pos, String record, String field, String expected, String found) {
        return new CorruptMediaException(record + " at " + pos, device.physicalSegmentId(pos.seg()),
                device.dataOffset(pos.seg()) + pos.off(), field, expected, found);
    }
}
