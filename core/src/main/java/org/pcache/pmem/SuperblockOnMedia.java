package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;
import static org.pcache.pmem.OnMediaLayout.LE_LONG;

import java.lang.foreign.MemorySegment;

/**
 * The superblock at 4 KiB into the cache device: dm-pcache's {@code pcache_sb}. It has no sequence number and a single
 * copy; a zero magic means "not formatted".
 *
 * <p>Owned by one thread; wraps a staging buffer, never the mapping.
 */
public final class SuperblockOnMedia {
    public static final long CRC_OFFSET = 0;
    public static final long FLAGS_OFFSET = CRC_OFFSET + Integer.BYTES;
    public static final long MAGIC_OFFSET = FLAGS_OFFSET + Integer.BYTES;
    public static final long SEG_NUM_OFFSET = MAGIC_OFFSET + Long.BYTES;
    public static final long PADDING_OFFSET = SEG_NUM_OFFSET + Integer.BYTES;
    /**
     * Size of the record: the x86-64 C struct, whose 8-byte alignment adds 4 bytes of tail padding.
     * <pre>
     *  0       4        8                 16         20        24
     *  +-------+--------+-----------------+----------+---------+
     *  |  crc  | flags  |      magic      | seg_num  | padding |
     *  +-------+--------+-----------------+----------+---------+
     * </pre>
     * crc: u32 over bytes 4..24 (padding included); flags: u32, bit 0 BIGENDIAN; magic: u64; seg_num: u32, the number
     * of 16 MiB segments on the device.
     */
    public static final long SIZE = PADDING_OFFSET + Integer.BYTES;

    /** PCACHE_MAGIC. */
    public static final long MAGIC = 0x65B05EFA96C596EFL;
    /** Set when the device was formatted on a big-endian machine; pcache (like dm-pcache on x86) refuses it. */
    public static final int FLAG_BIGENDIAN = 1;

    private MemorySegment buf;

    /** Makes this flyweight read and write {@code staging}, which must hold at least {@link #SIZE} bytes. */
    public SuperblockOnMedia wrap(MemorySegment staging) {
        this.buf = OnMediaLayout.requireCapacity(staging, SIZE, "superblock");
        return this;
    }

    public int crc() {
        return buf.get(LE_INT, CRC_OFFSET);
    }

    public int flags() {
        return buf.get(LE_INT, FLAGS_OFFSET);
    }

    public SuperblockOnMedia flags(int flags) {
        buf.set(LE_INT, FLAGS_OFFSET, flags);
        return this;
    }

    public long magic() {
        return buf.get(LE_LONG, MAGIC_OFFSET);
    }

    public SuperblockOnMedia magic(long magic) {
        buf.set(LE_LONG, MAGIC_OFFSET, magic);
        return this;
    }

    /** Number of physical segments, an unsigned 32-bit value. */
    public int segNum() {
        return buf.get(LE_INT, SEG_NUM_OFFSET);
    }

    public SuperblockOnMedia segNum(int segNum) {
        buf.set(LE_INT, SEG_NUM_OFFSET, segNum);
        return this;
    }

    /** The CRC the current content should carry. */
    public int computeCrc() {
        return Crc32c.crc(buf, FLAGS_OFFSET, SIZE - FLAGS_OFFSET);
    }

    /** Zeroes the padding and stores the CRC of the current content. */
    public SuperblockOnMedia seal() {
        buf.set(LE_INT, PADDING_OFFSET, 0);
        buf.set(LE_INT, CRC_OFFSET, computeCrc());
        return this;
    }

    public boolean crcValid() {
        return crc() == computeCrc();
    }

    /**
     * Checks magic, CRC, the endian flag and that seg_num is at least 1 and at most {@code maxSegNum}, what the device
     * holds.
     */
    public void validate(int maxSegNum) throws CorruptMediaException {
        if (magic() != MAGIC) {
            throw error("magic", hex(MAGIC), hex(magic()));
        }
        if (!crcValid()) {
            throw error("crc", hex(computeCrc()), hex(crc()));
        }
        if ((flags() & FLAG_BIGENDIAN) != 0) {
            throw error("flags", "BIGENDIAN clear (a little-endian cache)", hex(flags()));
        }
        long segNum = Integer.toUnsignedLong(segNum());
        if (segNum == 0 || segNum > maxSegNum) {
            throw error("seg_num", "1.." + maxSegNum + " (what the device holds)", String.valueOf(segNum));
        }
    }

    private static CorruptMediaException error(String field, String expected, String found) {
        return new CorruptMediaException("superblock", CorruptMediaException.NO_SEGMENT,
                CacheDeviceLayout.SUPERBLOCK_OFFSET, field, expected, found);
    }

    private static String hex(long value) {
        return "0x" + Long.toHexString(value);
    }

    private static String hex(int value) {
        return "0x" + Integer.toHexString(value);
    }
}
