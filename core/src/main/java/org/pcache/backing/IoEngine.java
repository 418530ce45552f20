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
 * {@code src} or fails; {@code discard} and {@code writeZeroes} act on the whole range or fail; {@code flush} makes
 * every write, discard and write-zeroes completed before it was called durable (data and the metadata needed to read
 * it back). A range outside {@code [0, size())} fails with {@link BackingIoException.Reason#OUT_OF_RANGE} and a
 * misaligned one with {@link BackingIoException.Reason#MISALIGNED}, through {@code done}, without touching the store.
 * Errors are reported through {@code done}, never thrown.
 *
 * <p>Discard and write-zeroes always succeed on a healthy store, whether the store supports them or not: an engine
 * whose store cannot discard does nothing, one whose store cannot zero a range writes zero blocks.
 * {@link #supportsDiscard()} and {@link #supportsWriteZeroes()} say which happens, so a caller can decide whether
 * sending them is worth it.
 */
public interface IoEngine extends AutoCloseable {

    /** Size of the store in bytes. */
    long size();

    /**
     * Offsets and lengths must be multiples of this many bytes (1 when there is no constraint). Memory may sit at
     * any address: an engine that needs aligned memory (O_DIRECT) copies through an aligned bounce buffer.
     */
    int alignment();

    /** Reads {@code dst.byteSize()} bytes at {@code offset} into {@code dst}. */
    void read(long offset, MemorySegment dst, IoCallback done);

    /** Writes all of {@code src} at {@code offset}; durable after a later {@link #flush}. */
    void write(long offset, MemorySegment src, IoCallback done);

    /** Makes every write, discard and write-zeroes completed before this call durable. */
    void flush(IoCallback done);

    /**
     * Tells the store that {@code [offset, offset + length)} holds nothing anyone needs (a block device's discard,
     * NBD's TRIM), so it may deallocate it. Afterwards the range reads back as its old bytes or as zeroes, whichever
     * the store chose: a caller must not rely on either. A no-op, completing successfully, when
     * {@link #supportsDiscard()} is false.
     */
    void discard(long offset, long length, IoCallback done);

    /**
     * Makes {@code [offset, offset + length)} read back as zeroes, like a write of zero blocks; the store may
     * deallocate the range to do it. When {@link #supportsWriteZeroes()} is false the engine writes the zero blocks
     * itself.
     */
    void writeZeroes(long offset, long length, IoCallback done);

    /**
     * Whether {@link #discard} reaches the store (true) or does nothing (false). An engine that learns only by trying
     * (a file system that refuses) answers true until the store first refuses, then false from then on.
     */
    boolean supportsDiscard();

    /**
     * Whether {@link #writeZeroes} is done by the store in one command per range (true) or by writing zero blocks
     * (false). Learned by trying, like {@link #supportsDiscard()}.
     */
    boolean supportsWriteZeroes();

    /**
     * The allocation map of {@code [offset, offset + length)}: consecutive runs from {@code offset}, at least one, that
     * may cover less than {@code length} (ask again for the rest). A hole reads as zeroes; a run the engine cannot tell
     * about is DATA. A range outside the store fails as other operations do. The default reports it all as DATA.
     */
    default void allocation(long offset, long length, AllocationCallback done) {
        done.completed(java.util.List.of(new BackingExtent(length, BackingExtent.Kind.DATA)), null);
    }

    /**
     * Whether the store can be reached now ({@link BackingConnection#LOCAL} for a local one). While it is
     * {@link BackingConnection.State#DISCONNECTED}, every operation fails at once with
     * {@link BackingIoException.Reason#IO_ERROR}.
     */
    default BackingConnection connection() {
        return BackingConnection.LOCAL;
    }

    /** Releases the store. Called once, after every operation has completed. */
    @Override
    void close() throws IOException;

    /** The answer to {@link #allocation}: the runs, or null and the error. */
    @FunctionalInterface
    interface AllocationCallback {
        void completed(java.util.List<BackingExtent> extents, IOException error);
    }

    /** The completion of one engine operation. */
    @FunctionalInterface
    interface IoCallback {
        /** Called once when the operation ended: {@code error} is null on success. */
        void completed(IOException error);
    }
}
