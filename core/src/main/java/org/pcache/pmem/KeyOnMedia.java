package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;
import static org.pcache.pmem.OnMediaLayout.LE_LONG;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * One cached extent as persisted in a kset: dm-pcache's {@code pcache_cache_key_onmedia}. It maps
 * {@code [off, off + len)} of the backing device to {@code len} bytes at {@code cache_seg_off} in the data area of
 * logical segment {@code cache_seg_id}, valid while that segment's gen is still {@code seg_gen}.
 *
 * <p>pcache extension (docs/format.md, "Data-less keys"): a key with {@link #FLAG_ZERO}, {@link #FLAG_DISCARD} or
 * {@link #FLAG_INVALIDATE} carries no data: it records a write-zeroes, a discard or an invalidation of
 * {@code [off, off + len)}, its cache_seg_id is {@link #NO_SEGMENT} and its other cache fields are zero. Only a cache
 * whose cache_info has {@link CacheInfoOnMedia#FLAG_DATALESS_KEYS} may hold one.
 *
 * <p>Nothing here is validated: the cache checks len, off + len against the backing size, the segment id against
 * n_segs and the data range against the data area when it decodes a key into memory.
 *
 * <p>Owned by one thread; wraps a kset staging buffer (see {@link KsetOnMedia#key}), never the mapping.
 */
public final class KeyOnMedia {
    public static final long OFF_OFFSET = 0;
    public static final long LEN_OFFSET = OFF_OFFSET + Long.BYTES;
    public static final long FLAGS_OFFSET = LEN_OFFSET + Integer.BYTES;
    public static final long CACHE_SEG_ID_OFFSET = FLAGS_OFFSET + Integer.BYTES;
    public static final long CACHE_SEG_OFF_OFFSET = CACHE_SEG_ID_OFFSET + Integer.BYTES;
    public static final long SEG_GEN_OFFSET = CACHE_SEG_OFF_OFFSET + Integer.BYTES;
    public static final long DATA_CRC_OFFSET = SEG_GEN_OFFSET + Long.BYTES;
    public static final long RESERVED_OFFSET = DATA_CRC_OFFSET + Integer.BYTES;
    /**
     * Size of the record.
     * <pre>
     *  0                 8       12       16             20              24                32         36         40
     *  +-----------------+-------+--------+--------------+---------------+-----------------+----------+----------+
     *  |       off       |  len  | flags  | cache_seg_id | cache_seg_off |     seg_gen     | data_crc | reserved |
     *  +-----------------+-------+--------+--------------+---------------+-----------------+----------+----------+
     * </pre>
     * off: u64 backing byte offset; len: u32; flags: u32, bit 0 EMPTY (never persisted), bit 1 CLEAN, pcache's bits 2
     * ZERO, 3 DISCARD, 4 INVALIDATE (data-less, at most one, never with CLEAN); cache_seg_id and
     * cache_seg_off: u32 logical segment and data-area offset; seg_gen: u64; data_crc: u32, CRC of the data when the
     * cache has DATA_CRC (otherwise unspecified).
     */
    public static final long SIZE = RESERVED_OFFSET + Integer.BYTES;

    /** A placeholder for a miss read in flight; never persisted by dm-pcache. */
    public static final int FLAG_EMPTY = 1;
    /** The data equals the backing device's (filled by a read miss); writeback skips it. */
    public static final int FLAG_CLEAN = 1 << 1;
    /** pcache extension: the range reads as zeroes; writeback sends a write-zeroes. No data. */
    public static final int FLAG_ZERO = 1 << 2;
    /** pcache extension: the range was discarded; it reads as zeroes and writeback sends a discard. No data. */
    public static final int FLAG_DISCARD = 1 << 3;
    /** pcache extension: the cache dropped the range; reads go to the backing device, writeback sends nothing. */
    public static final int FLAG_INVALIDATE = 1 << 4;
    /** The flags of a key without data. */
    public static final int DATALESS_FLAGS = FLAG_ZERO | FLAG_DISCARD | FLAG_INVALIDATE;
    /**
     * cache_seg_id of a data-less key: no cache has this many segments, so a reader that checks segment ids rejects
     * the key instead of reading data for it.
     */
    public static final int NO_SEGMENT = -1;

    private MemorySegment buf;
    private long base;

    /** Makes this flyweight read and write the key at {@code offset} in {@code staging}. */
    public KeyOnMedia wrap(MemorySegment staging, long offset) {
        Objects.checkFromIndexSize(offset, SIZE, staging.byteSize());
        this.buf = staging;
        this.base = offset;
        return this;
    }

    /** Zeroes all 40 bytes, reserved field included; encoders call it before setting the fields. */
    public KeyOnMedia clear() {
        buf.asSlice(base, SIZE).fill((byte) 0);
        return this;
    }

    public long off() {
        return buf.get(LE_LONG, base + OFF_OFFSET);
    }

    public KeyOnMedia off(long off) {
        buf.set(LE_LONG, base + OFF_OFFSET, off);
        return this;
    }

    /** Length in bytes, an unsigned 32-bit value. */
    public int len() {
        return buf.get(LE_INT, base + LEN_OFFSET);
    }

    public KeyOnMedia len(int len) {
        buf.set(LE_INT, base + LEN_OFFSET, len);
        return this;
    }

    public int flags() {
        return buf.get(LE_INT, base + FLAGS_OFFSET);
    }

    public KeyOnMedia flags(int flags) {
        buf.set(LE_INT, base + FLAGS_OFFSET, flags);
        return this;
    }

    public int cacheSegId() {
        return buf.get(LE_INT, base + CACHE_SEG_ID_OFFSET);
    }

    public KeyOnMedia cacheSegId(int cacheSegId) {
        buf.set(LE_INT, base + CACHE_SEG_ID_OFFSET, cacheSegId);
        return this;
    }

    public int cacheSegOff() {
        return buf.get(LE_INT, base + CACHE_SEG_OFF_OFFSET);
    }

    public KeyOnMedia cacheSegOff(int cacheSegOff) {
        buf.set(LE_INT, base + CACHE_SEG_OFF_OFFSET, cacheSegOff);
        return this;
    }

    public long segGen() {
        return buf.get(LE_LONG, base + SEG_GEN_OFFSET);
    }

    public KeyOnMedia segGen(long segGen) {
        buf.set(LE_LONG, base + SEG_GEN_OFFSET, segGen);
        return this;
    }

    public int dataCrc() {
        return buf.get(LE_INT, base + DATA_CRC_OFFSET);
    }

    public KeyOnMedia dataCrc(int dataCrc) {
        buf.set(LE_INT, base + DATA_CRC_OFFSET, dataCrc);
        return this;
    }
}
