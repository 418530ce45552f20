package org.pcache.backing;

import java.lang.foreign.MemorySegment;

/**
 * A memory range (a slice of the cache region or any buffer) read from or written to {@code backingOffset}.
 * Writeback sends cache-region views through these.
 */
public record MemoryRequest(BackingOp op, MemorySegment memory, long backingOffset, BackingCompletion completion)
        implements BackingRequest {

    public MemoryRequest {
        if (!op.movesData()) {
            throw new IllegalArgumentException(op + " carries no memory; use a RangeRequest");
        }
        if (backingOffset < 0 || memory.byteSize() == 0) {
            throw new IllegalArgumentException("memory request at " + backingOffset + " of " + memory.byteSize()
                    + " bytes");
        }
        if (op == BackingOp.READ && memory.isReadOnly()) {
            throw new IllegalArgumentException("memory request reads into read-only memory at " + backingOffset);
        }
    }

    @Override
    public long length() {
        return memory.byteSize();
    }
}
