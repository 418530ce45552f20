package org.pcache.backing;

/**
 * What a backing request does. {@link #READ} and {@link #WRITE} move bytes between memory and the device (a
 * {@link SliceRequest} or {@link MemoryRequest}); {@link #DISCARD} and {@link #WRITE_ZEROES} act on a range of the
 * device alone (a {@link RangeRequest}), with the meaning {@link IoEngine#discard} and {@link IoEngine#writeZeroes}
 * give them.
 */
public enum BackingOp {
    /** Device to memory. */
    READ,
    /** Memory to device. */
    WRITE,
    /** The range is no longer needed; it reads back as before or as zeroes. */
    DISCARD,
    /** The range reads back as zeroes. */
    WRITE_ZEROES;

    /** Whether the request carries memory to read into or write from. */
    public boolean movesData() {
        return this == READ || this == WRITE;
    }
}
