package org.pcache.backing;

/**
 * A request to the backing device: one of dm-pcache's two kinds (backing_dev.h, BACKING_DEV_REQ_TYPE_REQ and
 * BACKING_DEV_REQ_TYPE_KMEM), a {@link SliceRequest} or a {@link MemoryRequest}, or a {@link RangeRequest} that
 * discards or zeroes a range without memory.
 */
public sealed interface BackingRequest permits SliceRequest, MemoryRequest, RangeRequest {

    /** What the request does. */
    BackingOp op();

    /** Byte offset on the backing device. */
    long backingOffset();

    /** Length in bytes. */
    long length();

    /** Called once when the request finishes. */
    BackingCompletion completion();
}
