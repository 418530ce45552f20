package org.pcache.backing;

/**
 * A {@link BackingOp#DISCARD} or {@link BackingOp#WRITE_ZEROES} of {@code [backingOffset, backingOffset + length)}:
 * a request that names a range of the device and carries no memory.
 */
public record RangeRequest(BackingOp op, long backingOffset, long length, BackingCompletion completion)
        implements BackingRequest {

    public RangeRequest {
        if (op.movesData()) {
            throw new IllegalArgumentException(op + " moves data; use a MemoryRequest or SliceRequest");
        }
        if (backingOffset < 0 || length <= 0) {
            throw new IllegalArgumentException(op + " request at " + backingOffset + " of " + length + " bytes");
        }
    }
}
