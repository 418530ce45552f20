package org.pcache.cache;

import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Plain memory as a region, for a {@link TracedRegion} to keep its volatile view in: a sparse mapping of a deleted
 * tmpfs file (memory only for the pages touched), zero-filled. Flush and drain do nothing; the traced region models
 * persistence.
 *
 * <p>Threading: any thread; no locking of its own.
 */
final class SparseRegion implements PmemRegion {

    private static final VarHandle ORDERED_LONG =
            ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final Arena arena = Arena.ofShared();
    private final MemorySegment memory;

    SparseRegion(long size) {
        try {
            Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-sparse-", ".img");
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                this.memory = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            } finally {
                Files.delete(file);
            }
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public long size() {
        return memory.byteSize();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        MemorySegment.copy(src, srcOffset, memory, offset, length);
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        MemorySegment.copy(memory, offset, dst, dstOffset, length);
    }

    @Override
    public void zero(long offset, long length) {
        memory.asSlice(offset, length).fill((byte) 0);
    }

    @Override
    public long getLongAcquire(long offset) {
        return (long) ORDERED_LONG.getAcquire(memory, offset);
    }

    @Override
    public void putLongRelease(long offset, long value) {
        ORDERED_LONG.setRelease(memory, offset, value);
    }

    @Override
    public void flush(long offset, long length) {
    }

    @Override
    public void drain() {
    }

    @Override
    public MemorySegment view(long offset, long length) {
        return memory.asSlice(offset, length).asReadOnly();
    }

    @Override
    public PersistenceMode mode() {
        return PersistenceMode.SIMULATED;
    }

    @Override
    public void close() {
        arena.close();
    }
}
