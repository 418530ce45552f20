package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * Moves bytes between memory and a backing store: positional file I/O, O_DIRECT file I/O, an NBD client,
 * or a test filter stacked on another engine (like an nbdkit filter: one behaviour, then {@code next}).
 *
 * <p>Contract: every method returns without waiting for the I/O and calls {@code done} exactly once, on any
 * thread (possibly the caller's), with {@code null} on success or the error. Many operations may be in
 * flight at once. {@code read} fills {@code dst} completely or fails; {@code write} writes all of
 * {@code src} or fails; {@code flush} makes every write completed before it was called durable.
 */
public interface IoEngine extends AutoCloseable {

    /** Size of the store in bytes. */
    long size();

    /** Required alignment of offsets, lengths and memory addresses in bytes (1 when there is none). */
    int alignment();

    void read(long offset, MemorySegment dst, IoCallback done);

    void write(long offset, MemorySegment src, IoCallback done);

    void flush(IoCallback done);

    /** Releases the store. Called once, after every operation has completed. */
    @Override
    void close() throws IOException;

    /** The completion of one engine operation. */
    @FunctionalInterface
    interface IoCallback {
        void completed(IOException error);
    }
}
