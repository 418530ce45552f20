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
 * {@code src} or fails; {@code flush} makes every write completed before it was called durable (data and the
 * metadata needed to read it back). A range outside {@code [0, size())} fails with
 * {@link BackingIoException.Reason#OUT_OF_RANGE} and a misaligned one with
 * {@link BackingIoException.Reason#MISALIGNED}, through {@code done}, without touching the store. Errors are
 * reported through {@code done}, never thrown.
 */
public interface IoEngine extends AutoCloseable {

    /** Size of the store in bytes. */
    long size();

    /**
     * Offsets and lengths must be multiples of this many bytes (1 when there is no constraint). Memory may sit at
     * any address: an engine that needs aligned memory (O_DIRECT) copies through an aligned bounce buffer.
     */
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
