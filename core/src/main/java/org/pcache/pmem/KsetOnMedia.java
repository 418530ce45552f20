package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;
import static org.pcache.pmem.OnMediaLayout.LE_LONG;

import java.lang.foreign.MemorySegment;

/**
 * A key set in the kset log: dm-pcache's {@code pcache_cache_kset_onmedia}, a 24-byte header followed by up to
 * {@link #KEYS_MAX} {@link KeyOnMedia keys}. A LAST kset is a bare header whose key_num field holds the logical segment
 * where the log continues (at offset 0). An all-zero header ({@link #HEADER_SIZE} zero bytes) terminates the log.
 *
 * <p>Media is untrusted: {@link #decode(PmemRegion, long, long)} copies at most {@link #MAX_SIZE} bytes, bounded by the
 * end of the data area, into the staging buffer and checks magic, key_num, bounds and CRC, in that order, before
 * anything looks at a key; it never reads past the staging buffer.
 *
 * <p>Owned by one thread; wraps a staging buffer of at least {@link #MAX_SIZE} bytes for decoding, never the mapping.
 */
public final class KsetOnMedia {
    public static final long CRC_OFFSET = 0;
    public static final long KEY_NUM_OFFSET = CRC_OFFSET + Integer.BYTES;
    /** In a LAST kset the key_num field holds the next logical segment of the log. */
    public static final long NEXT_CACHE_SEG_ID_OFFSET = KEY_NUM_OFFSET;
    public static final long MAGIC_OFFSET = KEY_NUM_OFFSET + Integer.BYTES;
    public static final long FLAGS_OFFSET = MAGIC_OFFSET + Long.BYTES;
    /**
     * Size of the header, which is also the whole LAST kset and the size of the zero terminator.
     * <pre>
     *  0       4                          8                 16                24             24 + 40 * key_num
     *  +-------+--------------------------+-----------------+-----------------+---- ... ----+
     *  |  crc  | key_num|next_cache_seg_id|      magic      |      flags      |    keys     |
     *  +-------+--------------------------+-----------------+-----------------+---- ... ----+
     * </pre>
     * crc: u32 over bytes 4 .. 24 + 40 * key_num (4 .. 24 for LAST); key_num: u32; magic: u64; flags: u64, bit 0 LAST,
     * bit 1 BARRIER (a pcache extension: dm-pcache tests bit 0 only and ignores the others).
     */
    public static final long HEADER_SIZE = FLAGS_OFFSET + Long.BYTES;
    /** Maximum keys in one kset (PCACHE_KSET_KEYS_MAX). */
    public static final int KEYS_MAX = 128;
    /** Size of a full kset: the most any read of a kset needs. */
    public static final int MAX_SIZE = size(KEYS_MAX);

    /** PCACHE_KSET_MAGIC. */
    public static final long MAGIC = 0x676894a64e164f1aL;
    /** The kset only says where the log continues. */
    public static final long FLAG_LAST = 1;
    /**
     * pcache's extension: the kset was written by a client flush or a FUA write, so the end of a run of BARRIER ksets
     * is a point where the backing device should hold a consistent image (see docs/cache.md, writeback batches).
     * dm-pcache reads only {@link #FLAG_LAST} and writes 0, so its images carry no barriers and it reads pcache's.
     */
    public static final long FLAG_BARRIER = 2;

    /** What {@link #decode} found at a log position. */
    public enum Status {
        /** A valid kset of {@link KsetOnMedia#keyNum()} keys. */
        NORMAL,
        /** A valid LAST kset: the log continues at offset 0 of {@link KsetOnMedia#nextCacheSegId()}. */
        LAST,
        /** The magic is wrong: the zero terminator, a never-written area, or a torn header. */
        NO_MAGIC,
        /** key_num exceeds {@link #KEYS_MAX}. */
        KEY_NUM_OUT_OF_RANGE,
        /** The kset (or its header) would extend past the end of the segment's data area. */
        OVERRUNS_DATA_AREA,
        /** The CRC does not match: torn or corrupt. */
        CRC_MISMATCH;

        /** Whether this is a kset the log may follow. */
        public boolean valid() {
            return this == NORMAL || this == LAST;
        }
    }

    private MemorySegment buf;

    /** Bytes a kset of {@code keyNum} keys occupies on media. */
    public static int size(int keyNum) {
        if (keyNum < 0 || keyNum > KEYS_MAX) {
            throw new IllegalArgumentException("key_num " + keyNum + " outside 0.." + KEYS_MAX);
        }
        return Math.toIntExact(HEADER_SIZE + keyNum * KeyOnMedia.SIZE);
    }

    /** Offset of key {@code index} from the start of the kset. */
    public static long keyOffset(int index) {
        return HEADER_SIZE + index * KeyOnMedia.SIZE;
    }

    /** Makes this flyweight read and write {@code staging}, which must hold at least the header. */
    public KsetOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, HEADER_SIZE, "kset");
        return this;
    }

    public int crc() {
        return buf.get(LE_INT, CRC_OFFSET);
    }

    /** Number of keys, an unsigned 32-bit value; meaningless in a LAST kset. */
    public int keyNum() {
        return buf.get(LE_INT, KEY_NUM_OFFSET);
    }

    /** The logical segment a LAST kset points to, an unsigned 32-bit value; the caller checks it against n_segs. */
    public int nextCacheSegId() {
        return buf.get(LE_INT, NEXT_CACHE_SEG_ID_OFFSET);
    }

    public long magic() {
        return buf.get(LE_LONG, MAGIC_OFFSET);
    }

    public long flags() {
        return buf.get(LE_LONG, FLAGS_OFFSET);
    }

    public boolean isLast() {
        return (flags() & FLAG_LAST) != 0;
    }

    /** Whether a client flush or a FUA write wrote this kset ({@link #FLAG_BARRIER}). */
    public boolean isBarrier() {
        return (flags() & FLAG_BARRIER) != 0;
    }

    /** Points {@code into} at key {@code index} of this kset's buffer and returns it. */
    public KeyOnMedia key(int index, KeyOnMedia into) {
        if (index < 0 || index >= KEYS_MAX) {
            throw new IndexOutOfBoundsException("key index " + index + " outside 0.." + (KEYS_MAX - 1));
        }
        return into.wrap(buf, keyOffset(index));
    }

    /** The CRC the kset should carry, given its current key_num and LAST flag (key_num must be in range). */
    public int computeCrc() {
        long size = isLast() ? HEADER_SIZE : size(keyNum());
        return Crc32c.crc(buf, KEY_NUM_OFFSET, size - KEY_NUM_OFFSET);
    }

    /**
     * Seals a normal kset whose first {@code keyNum} keys are already encoded in the buffer: sets key_num, magic,
     * flags and CRC. Returns the kset's size on media.
     */
    public int sealKeys(int keyNum) {
        return sealKeys(keyNum, false);
    }

    /** {@link #sealKeys(int)}, with {@link #FLAG_BARRIER} set when {@code barrier}. */
    public int sealKeys(int keyNum, boolean barrier) {
        int size = size(keyNum);
        OnMediaLayout.requireCapacity(buf, size, "kset of " + keyNum + " keys");
        buf.set(LE_INT, KEY_NUM_OFFSET, keyNum);
        buf.set(LE_LONG, MAGIC_OFFSET, MAGIC);
        buf.set(LE_LONG, FLAGS_OFFSET, barrier ? FLAG_BARRIER : 0L);
        buf.set(LE_INT, CRC_OFFSET, computeCrc());
        return size;
    }

    /** Seals a LAST kset pointing at logical segment {@code nextCacheSegId}. Returns its size on media. */
    public int sealLast(int nextCacheSegId) {
        buf.set(LE_INT, NEXT_CACHE_SEG_ID_OFFSET, nextCacheSegId);
        buf.set(LE_LONG, MAGIC_OFFSET, MAGIC);
        buf.set(LE_LONG, FLAGS_OFFSET, FLAG_LAST);
        buf.set(LE_INT, CRC_OFFSET, computeCrc());
        return Math.toIntExact(HEADER_SIZE);
    }

    /** Size on media of the kset just decoded as {@link Status#NORMAL} or {@link Status#LAST}. */
    public int onMediaSize() {
        return isLast() ? Math.toIntExact(HEADER_SIZE) : size(keyNum());
    }

    /**
     * Copies the kset at {@code offset} of {@code region} into the staging buffer, reading no more than
     * {@code remaining} bytes (the rest of the segment's data area) nor {@link #MAX_SIZE}, and decodes it. The header
     * is read first and the keys only as far as its key_num says, so a short kset costs a short read.
     */
    public Status decode(PmemRegion region, long offset, long remaining) {
        long readLength = Math.min(Math.max(remaining, 0), MAX_SIZE);
        OnMediaLayout.requireCapacity(buf, readLength, "kset read");
        long header = Math.min(readLength, HEADER_SIZE);
        region.read(offset, buf, 0, header);
        if (header == HEADER_SIZE && magic() == MAGIC && !isLast()) {
            long keyNum = Integer.toUnsignedLong(keyNum());
            long size = keyNum <= KEYS_MAX ? size((int) keyNum) : readLength;
            long rest = Math.min(size, readLength) - HEADER_SIZE;
            if (rest > 0) {
                region.read(offset + HEADER_SIZE, buf, HEADER_SIZE, rest);
            }
        }
        return decode(remaining);
    }

    /**
     * Decodes a kset already copied into the staging buffer, which must hold its first
     * {@code min(remaining, MAX_SIZE)} bytes; {@code remaining} is the space left in the segment's data area from the
     * kset's position.
     */
    public Status decode(long remaining) {
        OnMediaLayout.requireCapacity(buf, Math.min(Math.max(remaining, 0), MAX_SIZE), "kset decode");
        if (remaining < HEADER_SIZE) {
            return Status.OVERRUNS_DATA_AREA;
        }
        if (magic() != MAGIC) {
            return Status.NO_MAGIC;
        }
        if (isLast()) {
            return crc() == computeCrc() ? Status.LAST : Status.CRC_MISMATCH;
        }
        long keyNum = Integer.toUnsignedLong(keyNum());
        if (keyNum > KEYS_MAX) {
            return Status.KEY_NUM_OUT_OF_RANGE;
        }
        if (size((int) keyNum) > remaining) {
            return Status.OVERRUNS_DATA_AREA;
        }
        return crc() == computeCrc() ? Status.NORMAL : Status.CRC_MISMATCH;
    }
}
