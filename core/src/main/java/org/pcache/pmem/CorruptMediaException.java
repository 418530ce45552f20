package org.pcache.pmem;

import java.io.IOException;

/**
 * A record read from the cache device failed validation: which record, where, which field, what was expected and what
 * was found. Thrown before anything is written to the device.
 */
public class CorruptMediaException extends IOException {

    private static final long serialVersionUID = 1L;

    /** {@link #segment()} of a record that lives outside the segments (superblock, cache_info, tails). */
    public static final int NO_SEGMENT = -1;

    private final String record;
    private final int segment;
    private final long offset;
    private final String field;
    private final String expected;
    private final String found;

    /**
     * @param record the record's name as in dm-pcache ("superblock", "cache_info", "segment_info", "key_tail", ...)
     * @param segment the physical segment holding the record, or {@link #NO_SEGMENT}
     * @param offset region offset of the record
     * @param field the offending field, or what was missing ("crc" when no replica is valid)
     * @param expected what a valid record holds there
     * @param found what the device holds
     */
    public CorruptMediaException(String record, int segment, long offset, String field, String expected,
                                 String found) {
        this("corrupt " + record + (segment == NO_SEGMENT ? "" : " of segment " + segment) + " at offset " + offset
                + ": " + field + " expected " + expected + ", found " + found, record, segment, offset, field,
                expected, found);
    }

    /** For a subclass that words its own {@code message}; the other parameters as above. */
    protected CorruptMediaException(String message, String record, int segment, long offset, String field,
                                    String expected, String found) {
        super(message);
        this.record = record;
        this.segment = segment;
        this.offset = offset;
        this.field = field;
        this.expected = expected;
        this.found = found;
    }

    public String record() {
        return record;
    }

    public int segment() {
        return segment;
    }

    public long offset() {
        return offset;
    }

    public String field() {
        return field;
    }

    public String expected() {
        return expected;
    }

    public String found() {
        return found;
    }
}
