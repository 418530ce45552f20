package org.pcache.cache;

import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A backing disk with a volatile write cache for power-cut runs that go on after each cut, as {@code LossyEngine}
 * models one: a completed write is visible at once and durable once a flush called after it completed; in a crash
 * image each write not yet durable is kept, dropped or torn (each 512-byte sector on its own), applied in completion
 * order over the durable image, so a later write that survived always wins. {@link #crashImage} builds one without
 * disturbing the run.
 *
 * <p>Operations are synchronous (as {@link MemoryEngine}'s) and each is an event of the run's {@link PowerTrace},
 * taken under its lock: a write completes before its event ends, a flush makes everything written before it durable.
 *
 * <p>Threading: any thread; writes, flushes and {@link #crashImage} under the trace's lock, reads without.
 */
final class TracedDisk implements IoEngine {

    private static final int SECTOR = SectorPattern.SECTOR;

    private record PendingWrite(long offset, byte[] data) {
    }

    private final PowerTrace trace;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment visible;
    private final MemorySegment durable;
    /** Completed writes not yet durable, in completion order; guarded by the trace's lock. */
    private final List<PendingWrite> pending = new ArrayList<>();

    TracedDisk(PowerTrace trace, long size) {
        this.trace = trace;
        this.visible = arena.allocate(size, Long.BYTES);
        this.durable = arena.allocate(size, Long.BYTES);
    }

    /** A disk holding, durably, what {@code initial} holds now. */
    TracedDisk(PowerTrace trace, MemoryEngine initial) {
        this(trace, initial.size());
        initial.read(0, visible, TracedDisk::check);
        MemorySegment.copy(visible, 0, durable, 0, visible.byteSize());
    }

    @Override
    public long size() {
        return visible.byteSize();
    }

    @Override
    public int alignment() {
        return 1;
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        MemorySegment.copy(visible, offset, dst, 0, dst.byteSize());
        done.completed(null);
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        trace.lock.lock();
        try {
            trace.at(PowerTrace.Kind.DISK_WRITE, false);
            MemorySegment.copy(src, 0, visible, offset, src.byteSize());
            pending.add(new PendingWrite(offset, src.toArray(ValueLayout.JAVA_BYTE)));
        } finally {
            trace.lock.unlock();
        }
        done.completed(null);
    }

    @Override
    public void flush(IoCallback done) {
        trace.lock.lock();
        try {
            trace.at(PowerTrace.Kind.DISK_FLUSH, false);
            for (PendingWrite write : pending) {
                MemorySegment.copy(write.data(), 0, durable, ValueLayout.JAVA_BYTE, write.offset(),
                        write.data().length);
            }
            pending.clear();
            trace.at(PowerTrace.Kind.DISK_FLUSH, true);
        } finally {
            trace.lock.unlock();
        }
        done.completed(null);
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        writeZeroes(offset, length, done);
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        write(offset, MemorySegment.ofArray(new byte[Math.toIntExact(length)]), done);
    }

    @Override
    public boolean supportsDiscard() {
        return false;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    /** The disk's memory stays until the test ends; devices stopping do not free it. */
    @Override
    public void close() {
    }

    /** Frees the disk's memory; after the last device on it stopped. */
    void free() {
        arena.close();
    }

    /**
     * Writes a disk a power failure now could leave, drawn from {@code random}, over {@code engine} (of this disk's
     * size). Call with the trace's lock held.
     */
    void crashImage(SplittableRandom random, MemoryEngine engine) {
        engine.write(0, durable, TracedDisk::check);
        for (PendingWrite write : pending) {
            MemorySegment data = MemorySegment.ofArray(write.data());
            int choice = random.nextInt(3);
            for (int at = 0; at < write.data().length; at += SECTOR) {
                if (choice == 0 || choice == 2 && random.nextBoolean()) {
                    int length = Math.min(SECTOR, write.data().length - at);
                    engine.write(write.offset() + at, data.asSlice(at, length), TracedDisk::check);
                }
            }
        }
    }

    private static void check(IOException error) {
        if (error != null) {
            throw new IllegalStateException("cannot build the crash image", error);
        }
    }
}
