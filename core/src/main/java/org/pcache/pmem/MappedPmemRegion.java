package org.pcache.pmem;

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
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;

import jdk.nio.mapmode.ExtendedMapMode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A {@link PmemRegion} over a memory-mapped file or DAX device: one {@link MemorySegment} for the whole region (no
 * 2 GiB limit), unmapped deterministically by {@link #close}.
 *
 * <p>It first asks for a MAP_SYNC mapping ({@link PersistenceMode#MAP_SYNC}): then {@link #flush} writes the CPU cache
 * lines back and the data is durable when it returns, as with dm-pcache's flushing copies; {@link #drain} has nothing
 * left to do. Where MAP_SYNC is not supported (tmpfs, ordinary files: no DAX) it falls back to a shared mapping
 * ({@link PersistenceMode#MSYNC}), logs that once at WARN, and then {@link #flush} only records the range while
 * {@link #drain} msyncs every range recorded so far, so that all the flushes of a kset close cost one msync pass.
 *
 * <p>Failures: a failed msync or MAP_SYNC flush, and a fault of a memory access of the mapping (SIGBUS, which the JVM
 * reports as an {@link InternalError}: the file was truncated, its file system is full under a sparse file, a page is
 * poisoned) throw {@link RegionFailedException} with what happened. Since a SIGBUS in JIT-compiled copy code can
 * surface after the access returned, every {@link #drain} also compares the file's size with the mapping's and
 * fails when the file was truncated: a persistence point never passes over pages the kernel dropped. A failed msync is never retried: every later
 * drain fails too ({@link PendingFlushes}), since a later success would not prove the earlier stores durable.
 *
 * <p>Region files: a missing (or empty) file is created sparse at the requested size. An existing file keeps its size;
 * asking for a different one is refused with {@link RegionSizeMismatchException} rather than growing or truncating a
 * cache behind its owner's back. {@link #openReadOnly} maps an existing file for inspection and never creates one.
 *
 * <p>Pre-faulting: {@link #open(Path, long, long)} populates the first bytes of the mapping at open
 * ({@link MappingPrefault}), so that no request pays a first-touch page fault there (about 2 us per 4 KiB page of a
 * sparse tmpfs file, against 0.3 us per page populated in bulk). {@link #open(Path, long)} pre-faults the first
 * {@link #DEFAULT_PREFAULT_BYTES} of a file on tmpfs or of a MAP_SYNC (DAX) mapping: the metadata and the first
 * segments the allocator hands out in a fresh cache, while a huge sparse file still opens fast and allocates no more
 * than that. A plain mapping of a file on a disk file system is not pre-faulted by default: a write fault there
 * dirties the page, so populating would write the whole range back to the disk.
 *
 * <p>Threading: every method may be called from any thread; see {@link PendingFlushes} for how concurrent drains share
 * an msync. {@link #close} must not race with other calls.
 */
public final class MappedPmemRegion implements PmemRegion {
    private static final Logger LOG = LoggerFactory.getLogger(MappedPmemRegion.class);

    /*
     * Ordered 8-byte access needs an aligned layout: JAVA_LONG_UNALIGNED accesses are not guaranteed single-copy
     * atomic. The mapping starts on a page boundary, so an 8-aligned offset is an 8-aligned address.
     */
    private static final VarHandle ORDERED_LONG =
            ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** What {@link #open(Path, long)} pre-faults on tmpfs and DAX: the first 256 MiB (the metadata and 15 segments). */
    public static final long DEFAULT_PREFAULT_BYTES = 256L << 20;

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final PersistenceMode mode;
    /** Ranges awaiting msync; null in MAP_SYNC mode. */
    private final PendingFlushes pending;
    private final AtomicBoolean closed = new AtomicBoolean();

    private MappedPmemRegion(Path path, Arena arena, MemorySegment mapping, PersistenceMode mode) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.mode = mode;
        this.pending = mode == PersistenceMode.MSYNC ? new PendingFlushes(mapping) : null;
    }

    /**
     * Maps {@code path} read-write, creating it sparse at {@code size} bytes when it is missing or empty.
     *
     * @throws RegionSizeMismatchException if the file exists with another size
     * @throws IOException if the file cannot be opened or mapped (a pre-fault that fails, on a file system too full for
     *                     it, is logged and skipped)
     */
    public static MappedPmemRegion open(Path path, long size) throws IOException {
        MappedPmemRegion region = openMapping(path, size, false);
        long bytes = region.mode == PersistenceMode.MAP_SYNC || onTmpfs(path) ? DEFAULT_PREFAULT_BYTES : 0;
        try {
            region.prefault(bytes, true);
        } catch (IOException e) {
            // Only a speed-up: a file system too full for it fails the cache later, at the first store it refuses.
            LOG.warn("pmem region path={} not pre-faulted: {}", path, e.getMessage());
        } catch (RuntimeException e) {
            region.close();
            throw e;
        }
        return region;
    }

    /**
     * Maps {@code path} as {@link #open(Path, long)} does, and pre-faults the first {@code prefaultBytes} of the
     * mapping (0: none, {@link Long#MAX_VALUE}: all of it). On a sparse file the pre-faulted range is allocated at once.
     *
     * @throws RegionSizeMismatchException if the file exists with another size
     * @throws IOException if the file cannot be opened or mapped, or the range cannot be populated (file system full)
     */
    public static MappedPmemRegion open(Path path, long size, long prefaultBytes) throws IOException {
        if (prefaultBytes < 0) {
            throw new IllegalArgumentException("prefault bytes must be >= 0, got " + prefaultBytes);
        }
        return openMapping(path, size, false).prefaultOrClose(prefaultBytes);
    }

    private MappedPmemRegion prefaultOrClose(long bytes) throws IOException {
        try {
            prefault(bytes, true);
            return this;
        } catch (IOException | RuntimeException e) {
            close();
            throw e;
        }
    }

    private static boolean onTmpfs(Path path) {
        try {
            return "tmpfs".equals(Files.getFileStore(path).type());
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * Pre-faults the first {@code bytes} of the mapping, by madvise unless {@code useMadvise} is false (the tests of
     * the touch loop); see {@link MappingPrefault}.
     */
    MappingPrefault.Method prefault(long bytes, boolean useMadvise) throws IOException {
        long start = System.nanoTime();
        MappingPrefault.Method method;
        try {
            method = MappingPrefault.populate(mapping, bytes, useMadvise);
        } catch (InternalError e) {
            throw faulted(e);
        }
        if (method != MappingPrefault.Method.NONE) {
            LOG.info("pmem region path={} pre-faulted {} bytes by {} in {} ms", path, Math.min(bytes, size()), method,
                    (System.nanoTime() - start) / 1_000_000);
        }
        return method;
    }

    /**
     * Maps {@code path} as {@link #open} does, but runs a plain shared mapping in {@link PersistenceMode#MAP_SYNC} mode:
     * each {@link #flush} is an msync of its range, durable on return, and {@link #drain} has nothing left to do, as on
     * a DAX mapping. For the tests of the MAP_SYNC code on machines without DAX; slow on a disk file system.
     */
    static MappedPmemRegion openAsMapSync(Path path, long size) throws IOException {
        return openMapping(path, size, true);
    }

    private static MappedPmemRegion openMapping(Path path, long size, boolean asMapSync) throws IOException {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive, got " + size);
        }
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            long existing = channel.size();
            if (existing != 0 && existing != size) {
                throw new RegionSizeMismatchException(path, size, existing);
            }
            Arena arena = Arena.ofShared();
            try {
                if (asMapSync) {
                    MemorySegment mapping = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
                    return new MappedPmemRegion(path, arena, mapping, PersistenceMode.MAP_SYNC);
                }
                return map(path, channel, size, arena);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }
    }

    /**
     * Maps the existing file {@code path} read-only, whole, for offline inspection: the file is never created, and
     * every store into the region fails ({@link PersistenceMode#READ_ONLY}), so nothing can change it.
     *
     * @throws java.nio.file.NoSuchFileException if the file does not exist
     * @throws IOException if the file cannot be opened or mapped
     */
    public static MappedPmemRegion openReadOnly(Path path) throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            Arena arena = Arena.ofShared();
            try {
                MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
                return new MappedPmemRegion(path, arena, mapping, PersistenceMode.READ_ONLY);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }
    }

    private static MappedPmemRegion map(Path path, FileChannel channel, long size, Arena arena) throws IOException {
        try {
            MemorySegment mapping = channel.map(ExtendedMapMode.READ_WRITE_SYNC, 0, size, arena);
            LOG.info("pmem region path={} size={} mode={}", path, size, PersistenceMode.MAP_SYNC);
            return new MappedPmemRegion(path, arena, mapping, PersistenceMode.MAP_SYNC);
        } catch (IOException | UnsupportedOperationException e) {
            // The mapping fails before anything is mapped (EOPNOTSUPP without DAX); the plain mapping is the fallback.
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            LOG.warn("pmem region path={} size={} mode={}: MAP_SYNC unavailable ({}); each drain costs an msync",
                    path, size, PersistenceMode.MSYNC, e.getMessage());
            return new MappedPmemRegion(path, arena, mapping, PersistenceMode.MSYNC);
        }
    }

    @Override
    public long size() {
        return mapping.byteSize();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        try {
            MemorySegment.copy(src, srcOffset, mapping, offset, length);
        } catch (InternalError e) {
            throw faulted(e);
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        try {
            MemorySegment.copy(mapping, offset, dst, dstOffset, length);
        } catch (InternalError e) {
            throw faulted(e);
        }
    }

    @Override
    public void zero(long offset, long length) {
        try {
            mapping.asSlice(offset, length).fill((byte) 0);
        } catch (InternalError e) {
            throw faulted(e);
        }
    }

    @Override
    public long getLongAcquire(long offset) {
        checkAligned(offset);
        try {
            return (long) ORDERED_LONG.getAcquire(mapping, offset);
        } catch (InternalError e) {
            throw faulted(e);
        }
    }

    @Override
    public void putLongRelease(long offset, long value) {
        checkAligned(offset);
        try {
            ORDERED_LONG.setRelease(mapping, offset, value);
        } catch (InternalError e) {
            throw faulted(e);
        }
    }

    @Override
    public void flush(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, mapping.byteSize());
        if (pending != null) {
            pending.record(offset, length);
        } else if (length > 0) {
            try {
                mapping.asSlice(offset, length).force();
            } catch (UncheckedIOException e) {
                throw new RegionFailedException("flush of [" + offset + ", " + (offset + length) + ") of " + path
                        + " failed: " + e.getMessage(), e.getCause());
            } catch (InternalError e) {
                throw faulted(e);
            }
        }
    }

    @Override
    public void drain() {
        if (pending != null) {
            pending.drain();
        }
        checkNotTruncated();
    }

    /**
     * A drain is a persistence point: nothing flushed may count as durable once the file is shorter than the mapping
     * (the kernel dropped the pages past its end, and a later access of them faults, possibly only after it returned).
     */
    private void checkNotTruncated() {
        long fileSize;
        try {
            fileSize = Files.size(path);
        } catch (IOException e) {
            throw new RegionFailedException("cannot stat cache file " + path + " at a drain: " + e.getMessage(), e);
        }
        if (fileSize < mapping.byteSize()) {
            String what = "cache file " + path + " was truncated to " + fileSize + " bytes under the running cache, "
                    + "which maps " + mapping.byteSize();
            throw new RegionFailedException(what, new IOException(what));
        }
    }

    @Override
    public MemorySegment view(long offset, long length) {
        return mapping.asSlice(offset, length).asReadOnly();
    }

    @Override
    public PersistenceMode mode() {
        return mode;
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "MappedPmemRegion[path=" + path + " size=" + mapping.byteSize() + " mode=" + mode + "]";
    }

    /** What a fault of a memory access of the mapping (SIGBUS) means, as far as the file tells. */
    private RegionFailedException faulted(InternalError e) {
        long fileSize;
        try {
            fileSize = Files.size(path);
        } catch (IOException | UnsupportedOperationException sizeUnknown) {
            fileSize = -1;
        }
        String what = fileSize >= 0 && fileSize < mapping.byteSize()
                ? "cache file " + path + " was truncated to " + fileSize + " bytes under the running cache, which maps "
                        + mapping.byteSize()
                : "a memory access of cache file " + path + " faulted: its file system is full (a sparse cache file "
                        + "on tmpfs) or a page is poisoned";
        return new RegionFailedException(what + " (" + e.getMessage() + ")", e);
    }

    private void checkAligned(long offset) {
        if ((offset & (Long.BYTES - 1)) != 0) {
            throw new IllegalArgumentException("ordered 8-byte access at offset " + offset
                    + " is not 8-byte aligned");
        }
    }
}
