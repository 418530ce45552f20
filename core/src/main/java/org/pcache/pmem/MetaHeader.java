package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;
import static org.pcache.pmem.OnMediaLayout.U8;

import java.lang.foreign.MemorySegment;

/**
 * The header that opens every replicated metadata record (cache_info, the tails, segment info, segment gen):
 * dm-pcache's {@code pcache_meta_header}. The CRC covers the record from byte 4 to its end, i.e. everything but the
 * crc field.
 *
 * <p>Unlike the record classes this is a descriptor, not a flyweight: its static accessors take the staging segment
 * that holds the whole record, because the header only ever exists at offset 0 of one. Only {@link DualReplica} sets
 * the sequence number and seals the CRC.
 */
public final class MetaHeader {
    public static final long CRC_OFFSET = 0;
    public static final long SEQ_OFFSET = CRC_OFFSET + Integer.BYTES;
    public static final long VERSION_OFFSET = SEQ_OFFSET + Byte.BYTES;
    public static final long RESERVED_OFFSET = VERSION_OFFSET + Byte.BYTES;
    /**
     * Size of the header.
     * <pre>
     *  0               4       5         6            8
     *  +---------------+-------+---------+------------+
     *  |      crc      |  seq  | version |  reserved  |
     *  +---------------+-------+---------+------------+
     * </pre>
     * crc: u32 over bytes 4 .. record end; seq: u8, wraps; version: u8, always 0; reserved: u16, 0.
     */
    public static final long SIZE = RESERVED_OFFSET + Short.BYTES;

    private MetaHeader() {
    }

    /** The stored CRC of the record in {@code record}. */
    public static int crc(MemorySegment record) {
        return record.get(LE_INT, CRC_OFFSET);
    }

    /** The 8-bit sequence number, 0..255. */
    public static int seq(MemorySegment record) {
        return Byte.toUnsignedInt(record.get(U8, SEQ_OFFSET));
    }

    /** The CRC the record of {@code recordSize} bytes should carry. */
    public static int computeCrc(MemorySegment record, long recordSize) {
        return Crc32c.crc(record, SEQ_OFFSET, recordSize - SEQ_OFFSET);
    }

    /** Whether the stored CRC matches the record's content. */
    public static boolean crcValid(MemorySegment record, long recordSize) {
        return crc(record) == computeCrc(record, recordSize);
    }

    static void seq(MemorySegment record, int seq) {
        record.set(U8, SEQ_OFFSET, (byte) seq);
    }

    static void seal(MemorySegment record, long recordSize) {
        record.set(LE_INT, CRC_OFFSET, computeCrc(record, recordSize));
    }
}
