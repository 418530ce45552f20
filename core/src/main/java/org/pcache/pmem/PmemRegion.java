package org.pcache.pmem;

import java.lang.foreign.MemorySegment;

/**
 * The persistent region that holds the cache: the only way pcache reads or writes persistent memory.
 *
 * <p>Stores reach the region through {@link #write} and {@link #putLongRelease}; they become durable
 * only after {@link #flush} of their range followed by {@link #drain}. Until then a power failure may
 * keep or lose each 64-byte line independently (see {@code CrashSimPmemRegion}).
 *
 * <p>Threading: every method may be called from any thread. {@link #drain} makes durable every range
 * flushed (by any thread) before it was called; implementations may make more durable, never less.
 */
public interface PmemRegion extends AutoCloseable {

    /** Size of the cache line: the unit a power failure keeps or loses. */
    int LINE_SIZE = 64;

    /** Size in bytes. */
    long size();

    /** Copies {@code length} bytes from {@code src} at {@code srcOffset} into the region at {@code offset}. */
    void write(long offset, MemorySegment src, long srcOffset, long length);

    /** Copies {@code length} bytes of the region at {@code offset} into {@code dst} at {@code dstOffset}. */
    void read(long offset, MemorySegment dst, long dstOffset, long length);

    /** Stores {@code length} zero bytes at {@code offset}. */
    void zero(long offset, long length);

    /** Reads the aligned little-endian 8-byte word at {@code offset} with acquire ordering. */
    long getLongAcquire(long offset);

    /** Stores an aligned little-endian 8-byte word at {@code offset} with release ordering; a single-copy-atomic store. */
    void putLongRelease(long offset, long value);

    /** Starts writing back the lines of {@code [offset, offset + length)}; they are durable after the next {@link #drain}. */
    void flush(long offset, long length);

    /** The persistence barrier: returns once every range flushed before this call is durable. */
    void drain();

    /** {@link #flush} then {@link #drain}: the range is durable on return. */
    default void persist(long offset, long length) {
        flush(offset, length);
        drain();
    }

    /**
     * A read-only view of {@code [offset, offset + length)} for zero-copy reads (writeback sends it straight to the
     * backing device). It reflects later stores; callers must not hold it past {@link #close}.
     */
    MemorySegment view(long offset, long length);

    /** How durability is achieved, for status and logs. */
    PersistenceMode mode();

    /** Unmaps the region. Stores not made durable before this call may be lost. */
    @Override
    void close();
}
