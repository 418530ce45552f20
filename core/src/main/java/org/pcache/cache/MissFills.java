package org.pcache.cache;

import org.pcache.backing.BackingIoException;
import org.pcache.backing.SliceRequest;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.RegionFailedException;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What a miss read brought back, kept as a CLEAN key (the fill half of dm-pcache's miss_read_end), on a thread of its
 * own, {@code pcache-fill}, so that storing it into the region never runs on the thread that completes the miss (the
 * backing engine's): the miss's completion only copies the data aside and queues the fill, and the reader's reply goes
 * out at once. A fill has no persistence step of its own: clean data need not be durable before the reply, and its
 * key is made durable with whatever kset it lands in.
 *
 * <p>Invariants: a fill lands only into a placeholder that is still EMPTY and in the index, checked under its subtree
 * lock before the space is taken and again before the key turns CLEAN, so backing data never shadows a write that
 * cut or removed the placeholder meanwhile (an EMPTY key is only ever cut at its back or removed, so its start never
 * moves). The data is stored into the region between those two lock holds, into space no one else uses, and no reader
 * looks at an EMPTY key's region space. While a fill waits, a read that meets its placeholder copies the data from
 * the fill ({@link #copyPending}) instead of reading the backing device again. Fills waiting hold at most
 * {@link #QUEUE_BYTES} of data: a miss that finds no room is not kept (it is clean data) and its placeholder is
 * removed, as is that of a failed miss read — by the worker, or first by a reader that meets it
 * ({@link #abandoned}).
 *
 * <p>Persistence order: rule 1 — a fill stores its data without flushing it and appends its key; the kset close
 * flushes the data before the kset.
 *
 * <p>Threading: {@link #completed} runs on the thread the backing engine completes the miss on and takes no cache
 * lock; {@link #copyPending} runs under the placeholder's subtree lock; fills land on {@code pcache-fill} (lock order as a writer's: subtree,
 * data head or kset, log writer, segment map). {@link #stop} is called by the cache's close.
 */
final class MissFills {

    /** The most data the fills waiting may hold. */
    static final long QUEUE_BYTES = 64L << 20;

    /** Where the worker is in its life; it only moves forward. */
    private enum State {
        /** Built; the thread has not started. */
        NEW,
        /** Landing fills. */
        RUNNING,
        /** Stopped by close: fills still queued were dropped, later ones are refused. */
        STOPPED
    }

    /** One miss to land: the placeholder, the backing offset its read started at, and the data (null: drop it). */
    private record Fill(CacheKey placeholder, long from, MemorySegment data) {
    }

    private final PmemRegion region;
    private final FailStopRegion failStop;
    private final KeyTree tree;
    private final DataHeads heads;
    private final Ksets ksets;
    private final SegmentMap segments;
    private final CacheStats stats;
    private final boolean dataCrc;
    private final Thread thread;
    /** Fills with data not landed yet, by placeholder (identity). */
    private final Map<CacheKey, Fill> pending = new ConcurrentHashMap<>();
    private final AtomicLong queuedBytes = new AtomicLong();
    /** Guarded by itself. */
    private final ArrayDeque<Fill> queue = new ArrayDeque<>();
    /** Guarded by queue. */
    private State state = State.NEW;
    /** The worker is landing a fill it took off the queue; guarded by queue. */
    private boolean landing;

    MissFills(FailStopRegion region, KeyTree tree, DataHeads heads, Ksets ksets, SegmentMap segments,
              CacheStats stats, boolean dataCrc) {
        this.region = region;
        this.failStop = region;
        this.tree = tree;
        this.heads = heads;
        this.ksets = ksets;
        this.segments = segments;
        this.stats = stats;
        this.dataCrc = dataCrc;
        this.thread = Thread.ofPlatform().name("pcache-fill").daemon(true).unstarted(this::run);
    }

    void start() {
        synchronized (queue) {
            state = State.RUNNING;
        }
        thread.start();
    }

    /**
     * The miss read {@code slice}, for which {@code placeholder} holds the place in the index, finished (on the backing
     * engine's thread): copies its data aside, when there is room, and queues the fill.
     */
    void completed(CacheKey placeholder, SliceRequest slice, BackingIoException error) {
        MemorySegment data = null;
        long length = slice.length();
        if (error == null && queuedBytes.addAndGet(length) <= QUEUE_BYTES) {
            data = MemorySegment.ofArray(new byte[(int) length]).copyFrom(slice.memory());
        } else if (error == null) {
            queuedBytes.addAndGet(-length);
        }
        Fill fill = new Fill(placeholder, slice.backingOffset(), data);
        pending.put(placeholder, fill);
        synchronized (queue) {
            if (state == State.RUNNING) {
                queue.add(fill);
                queue.notifyAll();
                return;
            }
        }
        forget(fill); // closing: the placeholder goes with the index
    }

    /**
     * Copies {@code [from, to)} of {@code placeholder}'s range to {@code dst} at {@code dstOffset} from its fill when
     * that is still waiting; false when there is none (the data is then read from the backing device). Called under
     * the placeholder's subtree lock.
     */
    boolean copyPending(CacheKey placeholder, long from, long to, MemorySegment dst, long dstOffset) {
        Fill fill = pending.get(placeholder);
        if (fill == null || fill.data == null) {
            return false;
        }
        MemorySegment.copy(fill.data, from - fill.from, dst, dstOffset, to - from);
        return true;
    }

    /**
     * Whether {@code placeholder} will never be filled (its read failed, or there was no room for its data): the
     * reader that meets it removes it, under its subtree lock, and reads the range as a gap. Without this a reader
     * arriving before the worker removed it would read the range without keeping it.
     */
    boolean abandoned(CacheKey placeholder) {
        Fill fill = pending.get(placeholder);
        return fill != null && fill.data == null;
    }

    /**
     * Stops the worker: drops the fills still queued (clean data: it is read from the backing device again when asked
     * for) and waits, until {@code deadline} at most, for the one landing; true when the worker has ended.
     */
    boolean stop(long deadline) throws InterruptedException {
        ArrayDeque<Fill> dropped;
        synchronized (queue) {
            boolean started = state != State.NEW;
            state = State.STOPPED;
            dropped = new ArrayDeque<>(queue);
            queue.clear();
            queue.notifyAll();
            if (!started) {
                return true;
            }
        }
        dropped.forEach(this::forget);
        return thread.join(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
    }

    private void run() {
        while (true) {
            Fill fill;
            synchronized (queue) {
                while (queue.isEmpty() && state == State.RUNNING) {
                    try {
                        queue.wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
                if (state != State.RUNNING) {
                    return;
                }
                fill = queue.poll();
                landing = true;
            }
            try {
                land(fill);
            } catch (RegionFailedException e) {
                // The region failed (and said so); nothing more is stored, the fill is just not kept.
            } catch (RuntimeException | Error e) {
                failStop.fail("a miss fill failed", e);
            } finally {
                forget(fill);
                synchronized (queue) {
                    landing = false;
                    queue.notifyAll();
                }
            }
        }
    }

    /** Waits until no fill is queued or landing, until {@code deadline} at most; true when none is. */
    boolean awaitIdle(long deadline) throws InterruptedException {
        synchronized (queue) {
            while (landing || (!queue.isEmpty() && state == State.RUNNING)) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(queue, left);
            }
            return true;
        }
    }

    /** Keeps {@code fill}'s data as a CLEAN key where its placeholder still stands, or removes the placeholder. */
    private void land(Fill fill) {
        CacheKey placeholder = fill.placeholder;
        KeySubtree subtree = tree.subtree(fill.from);
        int placed;
        synchronized (subtree) {
            if (!placeholder.inTree() || !placeholder.isEmpty()) {
                return;
            }
            if (fill.data == null || failStop.failed()) {
                subtree.remove(placeholder);
                return;
            }
            placed = heads.allocate(placeholder, placeholder.len);
            if (placed == 0) {
                subtree.remove(placeholder);
                return;
            }
        }
        CacheSegment seg = placeholder.seg;
        boolean kept = false;
        try {
            // The slow part, outside the lock: space only this fill uses, which no reader of an EMPTY key looks at.
            region.write(seg.dataOffset() + placeholder.segOff, fill.data, placeholder.off - fill.from, placed);
            synchronized (subtree) {
                if (!placeholder.inTree() || !placeholder.isEmpty()) {
                    return; // a write removed it meanwhile
                }
                if (placed < placeholder.len) {
                    subtree.cutBack(placeholder, placeholder.len - placed);
                }
                if (dataCrc) {
                    placeholder.crc = new DataCrc(placeholder.segOff, placeholder.len,
                            Crc32c.crc(region.view(placeholder.dataRegionOffset(), placeholder.len), 0,
                                    placeholder.len));
                }
                placeholder.becomeClean();
                kept = ksets.append(placeholder, Durability.BUFFERED); // rule 1: the kset close flushes the data
                if (kept) {
                    stats.missFills.increment();
                }
            }
        } finally {
            if (!kept) {
                synchronized (subtree) {
                    subtree.remove(placeholder);
                }
                segments.release(seg); // the reference the allocation took for a key record that was not written
            }
        }
    }

    /** The fill is done with: its data no longer serves readers, and its room goes back to the queue. */
    private void forget(Fill fill) {
        if (pending.remove(fill.placeholder, fill) && fill.data != null) {
            queuedBytes.addAndGet(-fill.data.byteSize());
        }
    }
}
