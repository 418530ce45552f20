package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The value layouts every on-media record uses: little-endian, unaligned (records live in heap staging buffers, whose
 * addresses carry no alignment guarantee). dm-pcache stores the superblock explicitly little-endian and everything else
 * in CPU order, which is little-endian on every machine it supports (the superblock's BIGENDIAN flag refuses others).
 */
final class OnMediaLayout {
    static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private OnMediaLayout() {
    }

    /** A zeroed heap staging buffer of {@code size} bytes. */
    static MemorySegment staging(long size) {
        return MemorySegment.ofArray(new byte[Math.toIntExact(size)]);
    }

    /** Checks that a staging buffer can hold a record of {@code size} bytes. */
    static MemorySegment requireCapacity(MemorySegment staging, long size, String record) {
        if (staging.byteSize() < size) {
            throw new IllegalArgumentException(record + " needs a staging buffer of " + size + " bytes, got "
                    + staging.byteSize());
        }
        return staging;
    }
}
