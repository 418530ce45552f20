package org.pcache.backing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * An in-memory store of a fixed size, zero-filled at creation: a backing device for embedders that want a volatile
 * one, and the bottom of most test stacks. Operations copy on the caller's thread and call back before returning;
 * flush has nothing to do; discard and write-zeroes both zero the range (so both are supported, and a discarded range
 * reads back as zeroes). Out-of-range and (when an alignment is set) misaligned ranges fail like
 * {@link FileEngine}'s, so tests can provoke those errors without a file.
 *
 * <p>Threading: every method may be called from any thread; concurrent operations on overlapping ranges interleave
 * like they would on a disk. The memory is freed by {@link #close}, which must come after the last operation.
 */
public final class MemoryEngine implements IoEngine {

    private final Arena arena = Arena.ofShared();
    private final MemorySegment store;
    private final DeviceGeometry geometry;

    /** A store of {@code size} bytes with no alignment constraint. */
    public MemoryEngine(long size) {
        this(size, 1);
    }

    /** A store of {@code size} bytes whose offsets and lengths must be multiples of {@code alignment}. */
    public MemoryEngine(long size, int alignment) {
        this.geometry = new DeviceGeometry(size, alignment);
        this.store = arena.allocate(size, Long.BYTES);
    }

    @Override
    public long size() {
        return geometry.size();
    }

    @Override
    public int alignment() {
        return geometry.alignment();
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        done.completed(copy("read", store, offset, dst, 0, dst.byteSize()));
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        done.completed(copy("write", src, 0, store, offset, src.byteSize()));
    }

    @Override
    public void flush(IoCallback done) {
        done.completed(null);
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        done.completed(zero("discard", offset, length));
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        done.completed(zero("write-zeroes", offset, length));
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    @Override
    public void close() {
        arena.close();
    }

    /** Checks the store's range and zeroes it; the error, or null on success. */
    private BackingIoException zero(String operation, long offset, long length) {
        BackingIoException invalid = geometry.check(operation, offset, length);
        if (invalid == null) {
            store.asSlice(offset, length).fill((byte) 0);
        }
        return invalid;
    }

    /** Checks the store's range and copies; the error, or null on success. */
    private BackingIoException copy(String operation, MemorySegment from, long fromOffset, MemorySegment to,
                                     long toOffset, long length) {
        long storeOffset = from == store ? fromOffset : toOffset;
        BackingIoException invalid = geometry.check(operation, storeOffset, length);
        if (invalid != null) {
            return invalid;
        }
        try {
            MemorySegment.copy(from, fromOffset, to, toOffset, length);
            return null;
        } catch (RuntimeException e) {
            // The caller's memory is read-only, freed, or confined to another thread.
            return new BackingIoException(BackingIoException.Reason.IO_ERROR, operation, storeOffset, length,
                    "memory not accessible: " + e, e);
        }
    }

    @Override
    public String toString() {
        return "memory size=" + geometry.size() + " alignment=" + geometry.alignment();
    }
}
