package org.pcache.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * The scratch memory of a {@link PcacheExport}'s CACHE requests, and its lifetime: {@value #COUNT} off-heap buffers of
 * {@value #SIZE} bytes, allocated with the export and freed by {@link #close}, each lent to one {@link Prefetch} at a
 * time. Lending never waits: with every buffer out, {@link #poll} returns null.
 *
 * <p>Lifecycle: close once no prefetch is in flight, that is after the server serving the export stopped.
 *
 * <p>Threading: lent and given back on any thread, through a concurrent queue.
 */
final class PrefetchBuffers implements AutoCloseable {

    /** Bytes of one buffer: a CACHE request is read through the cache in pieces of this size. */
    static final int SIZE = 1 << 20;
    /** CACHE requests prefetching at once, export-wide. */
    static final int COUNT = 4;

    private final Arena arena = Arena.ofShared();
    private final BlockingQueue<MemorySegment> free = new ArrayBlockingQueue<>(COUNT);

    PrefetchBuffers() {
        for (int i = 0; i < COUNT; i++) {
            free.add(arena.allocate(SIZE, NbdExport.BLOCK_SIZE));
        }
    }

    /** A free buffer, or null when all are lent. */
    MemorySegment poll() {
        return free.poll();
    }

    void giveBack(MemorySegment buffer) {
        free.add(buffer);
    }

    @Override
    public void close() {
        arena.close();
    }
}
