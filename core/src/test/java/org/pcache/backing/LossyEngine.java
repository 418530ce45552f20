package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A filter that models a disk with a volatile write cache, for power-cut tests: writes are visible to reads as soon
 * as they complete, but only writes that completed before a flush was called, and whose flush then completed, are
 * durable. {@link #crash} simulates the power cut.
 *
 * <p>Model:
 * <ul>
 * <li>The visible image is {@code next}: writes and reads pass straight through. A write-zeroes is a write of zero
 *     bytes. A discard reaches {@code next} as a write-zeroes, which is one of the outcomes a discard may have, so
 *     the model knows what the range holds.</li>
 * <li>The durable image is this filter's own copy of {@code next}, taken at construction. Each completed write is
 *     also kept as a pending record (offset, copy of the data) in completion order. A flush notes the newest
 *     record when it is called; when {@code next}'s flush completes, every record up to that one is applied to the
 *     durable image, in order, and dropped from the pending list. A failed flush makes nothing durable.</li>
 * <li>{@link #crash} decides, for each pending record in completion order, to keep it, drop it, or tear it (each
 *     512-byte sector it touches kept or dropped on its own), and applies the kept parts, in that order, onto the
 *     durable image. That result is the crash image: it becomes the durable image and is written to {@code next},
 *     so later reads see it. The pending list is then empty.</li>
 * </ul>
 *
 * <p>Why apply in completion order: per sector, the volatile cache held a sequence of versions (the durable one,
 * then one per write). After a power cut the sector holds one of them, and which one depends on what the cache had
 * written back: a later write that reached the platter always wins over an earlier one, and an earlier write may
 * survive a later one that was lost (it was written back before the later one arrived). Applying the kept parts in
 * completion order yields exactly these outcomes and never lets a dropped or earlier version reappear over a kept
 * later one. Sectors are independent of each other, as on a disk that writes its cache back in any order.
 *
 * <p>Limits: overlapping writes in flight at the same time are ordered by the moment {@code next} reports them
 * complete (callers should not rely on an order there, as on a real disk); a write that {@code next} fails is taken
 * not to have changed it, so stack a {@link FaultEngine} below this filter; {@link #crash} needs every operation to
 * have completed. The durable image lives in memory: keep test devices small.
 *
 * <p>The disk outlives the devices that use it: {@link #close} neither closes {@code next} nor drops the durable
 * image, so a test can stop a device, cut the power, and start a new device on the same engine, as after a reboot.
 * The test owns {@code next} and closes it at the end.
 *
 * <p>Threading: every method may be called from any thread; the pending list and the durable image are guarded by
 * one lock.
 */
public final class LossyEngine extends FilterEngine {

    /** The unit a power cut keeps or loses independently. */
    public static final int SECTOR_SIZE = 512;

    /** How a {@link #crash} treated the writes that were not durable. */
    public record Crash(int kept, int dropped, int torn) {
    }

    /** A completed write that no completed flush covers yet. */
    private record PendingWrite(long seq, long offset, byte[] data) {
    }

    private final Object lock = new Object();
    /** Guarded by lock. */
    private final MemorySegment durable;
    /** Completed writes not yet durable, in completion order (ascending seq). Guarded by lock. */
    private final ArrayDeque<PendingWrite> pending = new ArrayDeque<>();
    /** Sequence number of the next completed write. Guarded by lock. */
    private long nextSeq;
    /** Operations passed to next and not yet called back. */
    private final AtomicInteger inflight = new AtomicInteger();

    /** Stacks on {@code next}, whose current contents are taken as durable. */
    public LossyEngine(IoEngine next) throws IOException {
        super(next);
        this.durable = Arena.ofAuto().allocate(next.size(), Long.BYTES);
        long chunk = Math.max(next.alignment(), 1 << 20);
        for (long offset = 0; offset < next.size(); offset += chunk) {
            long length = Math.min(chunk, next.size() - offset);
            BlockingIo.read(next, offset, durable.asSlice(offset, length));
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        inflight.incrementAndGet();
        next.read(offset, dst, error -> {
            inflight.decrementAndGet();
            done.completed(error);
        });
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        byte[] data = src.toArray(ValueLayout.JAVA_BYTE);
        inflight.incrementAndGet();
        next.write(offset, src, error -> completed(offset, data, error, done));
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        writeZeroes(offset, length, done);
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        byte[] zeroes = new byte[Math.toIntExact(length)];
        inflight.incrementAndGet();
        next.writeZeroes(offset, length, error -> completed(offset, zeroes, error, done));
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    /** Records a write that {@code next} completed without error as pending, then calls back. */
    private void completed(long offset, byte[] data, IOException error, IoCallback done) {
        if (error == null) {
            synchronized (lock) {
                pending.addLast(new PendingWrite(nextSeq++, offset, data));
            }
        }
        inflight.decrementAndGet();
        done.completed(error);
    }

    @Override
    public void flush(IoCallback done) {
        long covered;
        synchronized (lock) {
            covered = nextSeq;
        }
        inflight.incrementAndGet();
        next.flush(error -> {
            if (error == null) {
                makeDurable(covered);
            }
            inflight.decrementAndGet();
            done.completed(error);
        });
    }

    /**
     * Cuts the power: every write not yet durable is kept, dropped or torn at sector granularity, decided from
     * {@code seed}; afterwards reads see the crash image, which is also the new durable image.
     *
     * @throws IllegalStateException if an operation is in flight
     */
    public Crash crash(long seed) throws IOException {
        synchronized (lock) {
            if (inflight.get() != 0) {
                throw new IllegalStateException("crash with " + inflight.get() + " operations in flight");
            }
            SplittableRandom random = new SplittableRandom(seed);
            int kept = 0;
            int dropped = 0;
            int torn = 0;
            for (PendingWrite write : pending) {
                switch (random.nextInt(3)) {
                    case 0 -> {
                        apply(write);
                        kept++;
                    }
                    case 1 -> dropped++;
                    default -> {
                        applyTorn(write, random);
                        torn++;
                    }
                }
            }
            // next still shows every pending write; put the crash image back where they landed.
            for (PendingWrite write : pending) {
                BlockingIo.write(next, write.offset(), durable.asSlice(write.offset(), write.data().length));
            }
            pending.clear();
            return new Crash(kept, dropped, torn);
        }
    }

    /** A copy of {@code [offset, offset + length)} of the durable image: what a power cut now could not take. */
    public byte[] durable(long offset, int length) {
        synchronized (lock) {
            return durable.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Completed writes that no completed flush covers yet. */
    public int unflushedWrites() {
        synchronized (lock) {
            return pending.size();
        }
    }

    /** Detaches a device from the disk; the disk and its images stay (see the class comment). */
    @Override
    public void close() {
    }

    private void makeDurable(long covered) {
        synchronized (lock) {
            while (!pending.isEmpty() && pending.peekFirst().seq() < covered) {
                apply(pending.pollFirst());
            }
        }
    }

    /** Guarded by lock. */
    private void apply(PendingWrite write) {
        MemorySegment.copy(write.data(), 0, durable, ValueLayout.JAVA_BYTE, write.offset(), write.data().length);
    }

    /** Applies each sector of {@code write} with probability one half. Guarded by lock. */
    private void applyTorn(PendingWrite write, SplittableRandom random) {
        long end = write.offset() + write.data().length;
        long sectorStart = write.offset() - write.offset() % SECTOR_SIZE;
        for (; sectorStart < end; sectorStart += SECTOR_SIZE) {
            if (random.nextBoolean()) {
                long from = Math.max(sectorStart, write.offset());
                long to = Math.min(sectorStart + SECTOR_SIZE, end);
                MemorySegment.copy(write.data(), (int) (from - write.offset()), durable, ValueLayout.JAVA_BYTE, from,
                        (int) (to - from));
            }
        }
    }
}
