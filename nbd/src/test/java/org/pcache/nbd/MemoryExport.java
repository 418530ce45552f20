package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * An {@link NbdExport} held in memory, for tests and benchmarks: every operation completes at once on the
 * caller's thread. It tracks allocation per 4 KiB page (written pages are data, never-written, trimmed or
 * zeroed ones are holes) so block status has something to show, counts flushes and FUA writes, and can be
 * told to fail every operation touching a range with EIO.
 *
 * <p>Threading: data copies are not synchronised (like a disk, overlapping concurrent I/O has no defined
 * result); the page map and the fault range are guarded by {@code this}.
 */
public final class MemoryExport implements NbdExport, AutoCloseable {

    static final int PAGE = 4096;

    private final String name;
    private final long size;
    private final Set<Capability> capabilities;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment data;
    /** Pages holding written data; guarded by this. */
    private final BitSet allocated = new BitSet();
    private final AtomicLong flushes = new AtomicLong();
    private final AtomicLong fuaWrites = new AtomicLong();
    /** Range that fails with EIO; guarded by this. */
    private long faultOffset = -1;
    private long faultLength;

    public MemoryExport(String name, long size) {
        this(name, size, EnumSet.complementOf(EnumSet.of(Capability.READ_ONLY)));
    }

    public MemoryExport(String name, long size, Set<Capability> capabilities) {
        this.name = name;
        this.size = size;
        this.capabilities = Set.copyOf(capabilities);
        this.data = arena.allocate(size, PAGE);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String description() {
        return "in-memory test export";
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public Set<Capability> capabilities() {
        return capabilities;
    }

    /** Bytes of the export, for assertions. */
    public MemorySegment contents() {
        return data;
    }

    public long flushes() {
        return flushes.get();
    }

    public long fuaWrites() {
        return fuaWrites.get();
    }

    /** Every later operation overlapping {@code [offset, offset + length)} fails with an I/O error. */
    public synchronized void failRange(long offset, long length) {
        faultOffset = offset;
        faultLength = length;
    }

    @Override
    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        return run(offset, dst.byteSize(), () -> MemorySegment.copy(data, offset, dst, 0, dst.byteSize()));
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        return run(offset, src.byteSize(), () -> {
            MemorySegment.copy(src, 0, data, offset, src.byteSize());
            mark(offset, src.byteSize(), true);
            if (durability == Durability.FUA) {
                fuaWrites.incrementAndGet();
            }
        });
    }

    @Override
    public CompletableFuture<Void> flush() {
        flushes.incrementAndGet();
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        return writeZeroes(offset, length, durability);
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        return run(offset, length, () -> {
            data.asSlice(offset, length).fill((byte) 0);
            mark(offset, length, false);
        });
    }

    @Override
    public CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
        List<Extent> extents = new ArrayList<>();
        synchronized (this) {
            long at = offset;
            long end = offset + length;
            while (at < end) {
                boolean data = allocated.get((int) (at / PAGE));
                int next = data ? allocated.nextClearBit((int) (at / PAGE)) : allocated.nextSetBit((int) (at / PAGE));
                long runEnd = next < 0 ? end : Math.min(end, (long) next * PAGE);
                extents.add(new Extent(runEnd - at, data ? Allocation.DATA : Allocation.HOLE));
                at = runEnd;
            }
        }
        return CompletableFuture.completedFuture(extents);
    }

    @Override
    public void close() {
        arena.close();
    }

    /** Marks pages touched by a write as data; pages wholly covered by zeroing become holes again. */
    private synchronized void mark(long offset, long length, boolean written) {
        if (written) {
            allocated.set((int) (offset / PAGE), (int) ((offset + length + PAGE - 1) / PAGE));
        } else {
            long first = (offset + PAGE - 1) / PAGE;
            long last = (offset + length) / PAGE;
            if (first < last) {
                allocated.clear((int) first, (int) last);
            }
        }
    }

    private CompletableFuture<Void> run(long offset, long length, Runnable operation) {
        synchronized (this) {
            if (faultOffset >= 0 && offset < faultOffset + faultLength && faultOffset < offset + length) {
                return CompletableFuture.failedFuture(new IOException("injected failure at " + offset));
            }
        }
        operation.run();
        return CompletableFuture.completedFuture(null);
    }
}
