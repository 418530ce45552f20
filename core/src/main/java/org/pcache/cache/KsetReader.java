package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;

/**
 * Reads the kset log: copies the kset at a position into a private buffer, checks it, and decodes its keys with every
 * 2026 hardening check (dm-pcache's kset_onmedia_valid and cache_key_decode). Replay, writeback and GC each own one.
 *
 * <p>A key passes when len is a positive multiple of 512, its range is 512-aligned, inside the backing device and inside
 * one 4 MiB stretch, its flags are 0 or CLEAN, its segment is below n_segs, its data lies inside the data area and its
 * generation is not newer than its segment's. A data-less key (exactly one of ZERO, DISCARD, INVALIDATE) passes on its
 * range alone, and only in a cache whose cache_info marks the DATALESS_KEYS extension; its cache fields are not read. Media is untrusted: any failure is a {@link CorruptMediaException} naming
 * the field, the expected and the found value.
 *
 * <p>Threading: owned by one thread.
 */
final class KsetReader {

    private final CacheDevice device;
    private final PmemRegion region;
    private final SegmentMap segments;
    private final long backingSize;
    private final MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
    private final KsetOnMedia kset = new KsetOnMedia().wrap(staging);
    private final KeyOnMedia record = new KeyOnMedia();
    private CachePos pos;

    KsetReader(CacheDevice device, SegmentMap segments, long backingSize) {
        this.device = device;
        this.region = device.region();
        this.segments = segments;
        this.backingSize = backingSize;
    }

    /** Reads and checks the kset at {@code at}; the log continues past it only for NORMAL and LAST. */
    KsetOnMedia.Status read(CachePos at) {
        this.pos = at;
        return kset.decode(region, device.dataOffset(at.seg()) + at.off(),
                CacheDeviceLayout.SEGMENT_DATA_SIZE - at.off());
    }

    /** Whether the kset just read carries {@link KsetOnMedia#FLAG_BARRIER}. */
    boolean barrier() {
        return kset.isBarrier();
    }

    /** Keys in the kset just read as NORMAL. */
    int keyNum() {
        return kset.keyNum();
    }

    /** Where the log continues after the kset just read: past it, or at the segment a LAST kset names. */
    CachePos next() throws CorruptMediaException {
        if (!kset.isLast()) {
            return new CachePos(pos.seg(), pos.off() + kset.onMediaSize());
        }
        int next = kset.nextCacheSegId();
        if (Integer.toUnsignedLong(next) >= device.segmentCount()) {
            throw corrupt("next_cache_seg_id", "< " + device.segmentCount(), Integer.toUnsignedString(next));
        }
        return new CachePos(next, 0);
    }

    /** The error for a kset that is not a valid end of the log either (see {@link KsetOnMedia.Status}). */
    CorruptMediaException invalid(KsetOnMedia.Status status) {
        String keyNum = Integer.toUnsignedString(kset.keyNum());
        return switch (status) {
            case KEY_NUM_OUT_OF_RANGE -> corrupt("key_num", "<= " + KsetOnMedia.KEYS_MAX, keyNum);
            case OVERRUNS_DATA_AREA -> corrupt("key_num", "a kset inside the data area",
                    keyNum + " keys at offset " + pos.off());
            case NO_MAGIC -> corrupt("magic", "0x" + Long.toHexString(KsetOnMedia.MAGIC),
                    "0x" + Long.toHexString(kset.magic()));
            case CRC_MISMATCH -> corrupt("crc", "0x" + Integer.toHexString(kset.computeCrc()),
                    "0x" + Integer.toHexString(kset.crc()));
            case NORMAL, LAST -> throw new IllegalArgumentException(status + " is valid");
        };
    }

    /** Decodes key {@code index} of the kset just read. */
    CacheKey key(int index) throws CorruptMediaException {
        kset.key(index, record);
        long off = record.off();
        long len = Integer.toUnsignedLong(record.len());
        int flags = record.flags();
        long segId = Integer.toUnsignedLong(record.cacheSegId());
        long segOff = Integer.toUnsignedLong(record.cacheSegOff());
        long gen = record.segGen();
        if (len == 0 || len % Pcache.SECTOR_SIZE != 0) {
            throw corruptKey(index, "len", "a positive multiple of 512", Long.toString(len));
        }
        if (off < 0 || off % Pcache.SECTOR_SIZE != 0 || off > backingSize - len) {
            throw corruptKey(index, "off", "a 512-aligned range inside the backing device of " + backingSize
                    + " bytes", off + "+" + len);
        }
        if (KeyTree.stretchEnd(off) < off + len) {
            throw corruptKey(index, "off", "a range inside one 4 MiB stretch", off + "+" + len);
        }
        if ((flags & KeyOnMedia.DATALESS_FLAGS) != 0 && (flags & ~KeyOnMedia.DATALESS_FLAGS) == 0
                && Integer.bitCount(flags) == 1) {
            if (!device.cacheInfo().datalessKeys()) {
                throw corruptKey(index, "flags", "0 or CLEAN (cache_info does not mark the DATALESS_KEYS extension)",
                        "0x" + Integer.toHexString(flags));
            }
            return CacheKey.dataless(off, (int) len, flags);
        }
        if ((flags & ~KeyOnMedia.FLAG_CLEAN) != 0) {
            throw corruptKey(index, "flags", "0, CLEAN, ZERO, DISCARD or INVALIDATE", "0x" + Integer.toHexString(flags));
        }
        if (segId >= device.segmentCount()) {
            throw corruptKey(index, "cache_seg_id", "< " + device.segmentCount(), Long.toString(segId));
        }
        if (segOff + len > CacheDeviceLayout.SEGMENT_DATA_SIZE) {
            throw corruptKey(index, "cache_seg_off", "data inside the " + CacheDeviceLayout.SEGMENT_DATA_SIZE
                    + "-byte data area", segOff + "+" + len);
        }
        CacheSegment seg = segments.segment((int) segId);
        if (Long.compareUnsigned(gen, seg.gen()) > 0) {
            throw corruptKey(index, "seg_gen", "<= " + seg.gen() + " (the segment's generation)",
                    Long.toUnsignedString(gen));
        }
        CacheKey key = new CacheKey(off, (int) len, flags);
        key.place(seg, (int) segOff, gen);
        return key;
    }

    /** The data CRC recorded in key {@code index} of the kset just read (meaningful only with data_crc on). */
    int recordedCrc(int index) {
        return kset.key(index, record).dataCrc();
    }

    /** Checks the data of live key {@code index}, as {@link #key} decoded it, against its recorded CRC. */
    void verifyCrc(int index, CacheKey key) throws CorruptMediaException {
        int recorded = recordedCrc(index);
        int actual = Crc32c.crc(region.view(key.dataRegionOffset(), key.len), 0, key.len);
        if (actual != recorded) {
            throw corruptKey(index, "data_crc", "0x" + Integer.toHexString(recorded),
                    "0x" + Integer.toHexString(actual) + " over seg=" + key.seg.id() + " seg_off=" + key.segOff
                            + " len=" + key.len);
        }
    }

    private CorruptMediaException corruptKey(int index, String field, String expected, String found) {
        long at = device.dataOffset(pos.seg()) + pos.off() + KsetOnMedia.keyOffset(index);
        return new CorruptMediaException("key " + index + " of kset at " + pos, device.physicalSegmentId(pos.seg()),
                at, field, expected, found);
    }

    private CorruptMediaException corrupt(String field, String expected, String found) {
        return new CorruptMediaException("kset at " + pos, device.physicalSegmentId(pos.seg()),
                device.dataOffset(pos.seg()) + pos.off(), field, expected, found);
    }
}
