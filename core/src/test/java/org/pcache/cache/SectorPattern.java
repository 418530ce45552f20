package org.pcache.cache;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Test data that identifies itself: every 512-byte sector carries the id of the write that produced it and its own
 * device offset, and the rest of the sector is derived from both, so a sector read back names its write and any
 * torn, misplaced or garbage sector is recognised.
 */
final class SectorPattern {

    static final int SECTOR = 512;
    /** The id of an all-zero sector (written by write-zeroes, or never written). */
    static final long ZERO = 0;
    /** Returned for a sector that is neither zero nor a valid pattern. */
    static final long GARBAGE = -1;

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;

    private SectorPattern() {
    }

    /** Fills {@code buf}, which will be written at device offset {@code deviceOffset}, with write {@code id}'s data. */
    static void fill(MemorySegment buf, long deviceOffset, long id) {
        for (long at = 0; at < buf.byteSize(); at += SECTOR) {
            fillSector(buf, at, deviceOffset + at, id);
        }
    }

    /** The id of the write whose data is in the sector at {@code at} of {@code buf}, read from {@code deviceOffset}. */
    static long idOf(MemorySegment buf, long at, long deviceOffset) {
        long id = buf.get(LONG, at);
        if (id == ZERO) {
            for (long word = 0; word < SECTOR; word += Long.BYTES) {
                if (buf.get(LONG, at + word) != 0) {
                    return GARBAGE;
                }
            }
            return ZERO;
        }
        if (buf.get(LONG, at + Long.BYTES) != deviceOffset) {
            return GARBAGE;
        }
        for (int i = 2; i < SECTOR / Long.BYTES; i++) {
            if (buf.get(LONG, at + (long) i * Long.BYTES) != word(id, deviceOffset, i)) {
                return GARBAGE;
            }
        }
        return id;
    }

    /**
     * {@link #idOf}, checking the id, the offset and one word of each 64-byte line (the unit a power cut keeps, loses
     * or tears in the region): an eighth of the work, for checks that read whole devices thousands of times. A line
     * left with older content is always seen; a torn one, whose words mix old and new, half the time.
     */
    static long idOfSampled(MemorySegment buf, long at, long deviceOffset) {
        long id = buf.get(LONG, at);
        for (int i = 1; i < SECTOR / Long.BYTES; i += i == 1 ? 6 : 8) {
            long word = buf.get(LONG, at + (long) i * Long.BYTES);
            long expected = id == ZERO ? 0 : i == 1 ? deviceOffset : word(id, deviceOffset, i);
            if (word != expected) {
                return GARBAGE;
            }
        }
        return id;
    }

    private static void fillSector(MemorySegment buf, long at, long deviceOffset, long id) {
        buf.set(LONG, at, id);
        buf.set(LONG, at + Long.BYTES, deviceOffset);
        for (int i = 2; i < SECTOR / Long.BYTES; i++) {
            buf.set(LONG, at + (long) i * Long.BYTES, word(id, deviceOffset, i));
        }
    }

    private static long word(long id, long deviceOffset, int index) {
        long z = id * 0x9E3779B97F4A7C15L + deviceOffset * 0xBF58476D1CE4E5B9L + index * 0x94D049BB133111EBL;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
