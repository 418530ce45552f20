package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;

import java.lang.foreign.MemorySegment;

/**
 * The cache's own description, kept in two replicas 4 KiB apart at 8 KiB into the device: dm-pcache's
 * {@code pcache_cache_info}.
 *
 * <p>Owned by one thread; wraps a staging buffer, never the mapping.
 */
public final class CacheInfoOnMedia {
    public static final long SEG_ID_OFFSET = MetaHeader.SIZE;
    public static final long N_SEGS_OFFSET = SEG_ID_OFFSET + Integer.BYTES;
    public static final long FLAGS_OFFSET = N_SEGS_OFFSET + Integer.BYTES;
    public static final long RESERVED_OFFSET = FLAGS_OFFSET + Integer.BYTES;
    /**
     * Size of the record.
     * <pre>
     *  0              8          12         16        20          24
     *  +--------------+----------+----------+---------+-----------+
     *  | meta header  |  seg_id  |  n_segs  |  flags  | reserved  |
     *  +--------------+----------+----------+---------+-----------+
     * </pre>
     * seg_id: u32, physical id of the first segment of the chain; n_segs: u32, segments in the chain; flags: u32,
     * bit 0 DATA_CRC, bit 1 INIT_DONE, bits 2-5 cache mode, bits 6-12 gc_percent; pcache's bits 16-23 mark
     * extensions a reader must know to read the image (bit 16 DATALESS_KEYS).
     */
    public static final long SIZE = RESERVED_OFFSET + Integer.BYTES;
    /** Distance between the two replicas (PCACHE_CACHE_INFO_SIZE). */
    public static final long SLOT_STRIDE = 4096;

    public static final int FLAG_DATA_CRC = 1;
    public static final int FLAG_INIT_DONE = 1 << 1;
    public static final int CACHE_MODE_SHIFT = 2;
    public static final int CACHE_MODE_MASK = 0xF << CACHE_MODE_SHIFT;
    public static final int GC_PERCENT_SHIFT = 6;
    public static final int GC_PERCENT_MASK = 0x7F << GC_PERCENT_SHIFT;
    /**
     * pcache extension: the kset log may hold data-less keys ({@link KeyOnMedia#DATALESS_FLAGS}). Set before the first
     * one is written and never cleared (a format starts without it); a reader that does not know it must refuse the
     * image.
     */
    public static final int FLAG_DATALESS_KEYS = 1 << 16;
    /** pcache's incompatible-extension bits: an image with a bit set here that a reader does not know is refused. */
    public static final int EXTENSION_MASK = 0xFF << 16;
    /** The extension bits this version knows. */
    public static final int KNOWN_EXTENSIONS = FLAG_DATALESS_KEYS;
    /** Every flag bit dm-pcache defines; others are preserved when the record is rewritten. */
    public static final int KNOWN_FLAGS = FLAG_DATA_CRC | FLAG_INIT_DONE | CACHE_MODE_MASK | GC_PERCENT_MASK;

    private MemorySegment buf;

    /** Makes this flyweight read and write {@code staging}, which must hold at least {@link #SIZE} bytes. */
    public CacheInfoOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, SIZE, "cache_info");
        return this;
    }

    public int segId() {
        return buf.get(LE_INT, SEG_ID_OFFSET);
    }

    public CacheInfoOnMedia segId(int segId) {
        buf.set(LE_INT, SEG_ID_OFFSET, segId);
        return this;
    }

    public int nSegs() {
        return buf.get(LE_INT, N_SEGS_OFFSET);
    }

    public CacheInfoOnMedia nSegs(int nSegs) {
        buf.set(LE_INT, N_SEGS_OFFSET, nSegs);
        return this;
    }

    public int flags() {
        return buf.get(LE_INT, FLAGS_OFFSET);
    }

    public CacheInfoOnMedia flags(int flags) {
        buf.set(LE_INT, FLAGS_OFFSET, flags);
        return this;
    }

    /**
     * Checks the geometry against the superblock's {@code segNum} (1 <= n_segs <= seg_num, seg_id < seg_num) and that
     * gc_percent is at most 90, and that it uses no pcache extension this version does not know; {@code offset} is the
     * record's region offset, for the error.
     */
    public void validate(int segNum, long offset) throws CorruptMediaException {
        long segs = Integer.toUnsignedLong(nSegs());
        if (segs == 0 || segs > segNum) {
            throw error(offset, "n_segs", "1.." + segNum + " (seg_num)", String.valueOf(segs));
        }
        if (Integer.compareUnsigned(segId(), segNum) >= 0) {
            throw error(offset, "seg_id", "< seg_num " + segNum, Integer.toUnsignedString(segId()));
        }
        int gcPercent = (flags() & GC_PERCENT_MASK) >>> GC_PERCENT_SHIFT;
        if (gcPercent > CacheDevice.GC_PERCENT_MAX) {
            throw error(offset, "flags.gc_percent", "0.." + CacheDevice.GC_PERCENT_MAX, String.valueOf(gcPercent));
        }
        int unknown = flags() & EXTENSION_MASK & ~KNOWN_EXTENSIONS;
        if (unknown != 0) {
            throw error(offset, "flags", "no pcache extension bit this version does not know (it knows bit 16, "
                    + "DATALESS_KEYS)", "unknown extension bits 0x" + Integer.toHexString(unknown));
        }
    }

    private static CorruptMediaException error(long offset, String field, String expected, String found) {
        return new CorruptMediaException("cache_info", CorruptMediaException.NO_SEGMENT, offset, field, expected,
                found);
    }

    /** Decodes the fields (see {@link #validate} for their ranges). */
    public CacheInfo decode() {
        return CacheInfo.fromFlags(segId(), nSegs(), flags());
    }

    /** Encodes {@code info} (header and reserved field zeroed; the seq and CRC are DualReplica's). */
    public CacheInfoOnMedia encode(CacheInfo info) {
        buf.asSlice(0, SIZE).fill((byte) 0);
        return segId(info.segId()).nSegs(info.nSegs()).flags(info.flags());
    }
}
