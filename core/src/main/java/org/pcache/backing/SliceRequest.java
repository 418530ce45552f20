package org.pcache.backing;

import java.lang.foreign.MemorySegment;

/**
 * The slice {@code [offset, offset + length)} of an upper request, retargeted to backing offset
 * {@code upper.offset() + offset}. Creating one takes a reference on the upper request; the backing device
 * drops it with the slice's status after {@link #completion()} ran, so the upper request completes once, when
 * its last slice completes, with the first error.
 */
public record SliceRequest(BackingOp op, UpperRequest upper, long offset, long length, BackingCompletion completion)
        implements BackingRequest {

    public SliceRequest {
        if (!op.movesData()) {
            throw new IllegalArgumentException(op + " carries no memory; use a RangeRequest");
        }
        if (offset < 0 || length <= 0 || offset + length > upper.data().byteSize()) {
            throw new IllegalArgumentException("slice [" + offset + ", +" + length + ") outside upper request of "
                    + upper.data().byteSize() + " bytes");
        }
        if (op == BackingOp.READ && upper.data().isReadOnly()) {
            throw new IllegalArgumentException("slice reads into a read-only upper request at " + upper.offset());
        }
        upper.retain();
    }

    @Override
    public long backingOffset() {
        return upper.offset() + offset;
    }

    /** The part of the upper request's buffer this slice reads into or writes from. */
    public MemorySegment memory() {
        return upper.data().asSlice(offset, length);
    }
}
