package org.pcache.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/**
 * Off-heap I/O buffers for one connection, in power-of-two size classes from {@link #MIN_CAPACITY} to
 * {@link NbdProtocol#MAX_PAYLOAD_LENGTH}, reused so that steady traffic allocates nothing. Idle buffers are
 * kept up to a byte limit; past it a released buffer is dropped and the garbage collector frees it (each
 * buffer has its own automatic arena, so no arena close is needed on the data path).
 *
 * <p>Threading: acquired by the connection's reader thread, released by its reply writer; the idle lists are
 * guarded by {@code this}.
 */
final class BufferPool {

    static final int MIN_CAPACITY = 4096;
    private static final int CLASSES = Integer.numberOfTrailingZeros(NbdProtocol.MAX_REQUEST_LENGTH / MIN_CAPACITY) + 1;

    private final long maxIdleBytes;
    /** Idle buffers by size class; guarded by this. */
    private final ArrayDeque<Buffer>[] idle;
    /** Capacity of all idle buffers; guarded by this. */
    private long idleBytes;

    @SuppressWarnings("unchecked")
    BufferPool(long maxIdleBytes) {
        this.maxIdleBytes = maxIdleBytes;
        this.idle = new ArrayDeque[CLASSES];
        for (int i = 0; i < CLASSES; i++) {
            idle[i] = new ArrayDeque<>();
        }
    }

    /** A buffer of at least {@code length} bytes, at most {@link NbdProtocol#MAX_PAYLOAD_LENGTH}. */
    Buffer acquire(int length) {
        if (length <= 0 || length > NbdProtocol.MAX_REQUEST_LENGTH) {
            throw new IllegalArgumentException("buffer of " + length + " bytes (expected 1.."
                    + NbdProtocol.MAX_REQUEST_LENGTH + ")");
        }
        int sizeClass = sizeClass(length);
        Buffer buffer;
        synchronized (this) {
            buffer = idle[sizeClass].pollFirst();
            if (buffer != null) {
                idleBytes -= buffer.capacity();
            }
        }
        if (buffer == null) {
            buffer = new Buffer(sizeClass, Arena.ofAuto().allocate((long) MIN_CAPACITY << sizeClass, MIN_CAPACITY));
        }
        buffer.length = length;
        return buffer;
    }

    void release(Buffer buffer) {
        synchronized (this) {
            if (idleBytes + buffer.capacity() <= maxIdleBytes) {
                idle[buffer.sizeClass].addFirst(buffer);
                idleBytes += buffer.capacity();
            }
        }
    }

    static int sizeClass(int length) {
        int capacity = Math.max(MIN_CAPACITY, Integer.highestOneBit(length - 1) << 1);
        return Integer.numberOfTrailingZeros(capacity / MIN_CAPACITY);
    }

    /** A pooled block and the length in use; owned by one request at a time. */
    static final class Buffer {
        private final int sizeClass;
        private final MemorySegment block;
        private final ByteBuffer view;
        private int length;

        private Buffer(int sizeClass, MemorySegment block) {
            this.sizeClass = sizeClass;
            this.block = block;
            this.view = block.asByteBuffer();
        }

        int capacity() {
            return (int) block.byteSize();
        }

        /** The first {@code length} bytes as a segment. */
        MemorySegment segment() {
            return block.asSlice(0, length);
        }

        /** The first {@code length} bytes as a buffer positioned at 0; the same object on every call. */
        ByteBuffer byteBuffer() {
            return view.clear().limit(length);
        }
    }
}
