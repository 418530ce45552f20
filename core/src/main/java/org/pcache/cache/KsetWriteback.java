package org.pcache.cache;

import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.BackingOp;
import org.pcache.backing.BackingRequest;
import org.pcache.backing.MemoryRequest;
import org.pcache.backing.RangeRequest;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;

/**
 * Writes a batch of ksets' dirty data to the backing device (the core of dm-pcache's cache_writeback, over many ksets
 * at once): the live keys of every kset loaded are collapsed so later keys win (a ZERO, DISCARD, INVALIDATE or clean
 * key cuts the dirty keys before it and is cut by those after it; only dirty ones are sent), the extents go out sorted by offset straight from the region,
 * neighbours that are contiguous both on the backing device and in the region merged into one write of at most
 * {@link #MERGE_MAX} bytes, ZERO and DISCARD keys as write-zeroes and discards of their range
 * ({@link #backingRequest}), with at most a given depth of writes in flight; the backing device is flushed once, after
 * the last one completed. Used by {@link Writeback} and, offline, by {@link CacheImage#recover}.
 *
 * <p>Writes are sent once: a batch whose writes make no progress within the timeout is waited for again, never resent
 * while in flight (a stalled device would otherwise collect copies of every write). A batch that met a backing error
 * stops sending, waits for its writes in flight, and is sent again whole on the next call: its data is still in the
 * region (GC never passes dirty_tail), and writing an extent twice leaves what writing it once does.
 *
 * <p>Threading: owned by one thread; {@link #writesInFlight()} may be read from any.
 */
final class KsetWriteback {

    /** Largest write made of merged extents. */
    static final int MERGE_MAX = 1 << 20;

    private final PmemRegion region;
    private final BackingDevice backing;
    private final boolean dataCrc;
    private final long timeoutNanos;
    /** The loaded dirty keys, collapsed, per 4 MiB stretch in offset order. */
    private final TreeMap<Long, KeySubtree> collapsed = new TreeMap<>();
    private final AtomicInteger writesInFlight = new AtomicInteger();
    private long dirtyBytes;
    /** The loaded batch's writes once sent; null before, and after they all completed. */
    private Batch sending;

    /** Waits at most {@code timeout} for progress of a batch's writes before it reports them stalled. */
    KsetWriteback(PmemRegion region, BackingDevice backing, boolean dataCrc, Duration timeout) {
        this.region = region;
        this.backing = backing;
        this.dataCrc = dataCrc;
        this.timeoutNanos = timeout.toNanos();
    }

    /** Starts a new, empty batch. */
    void clear() {
        if (sending != null) {
            throw new IllegalStateException("clear while the batch's writes are still in flight");
        }
        collapsed.clear();
        dirtyBytes = 0;
    }

    /**
     * Adds the live keys of the kset {@code reader} just read as NORMAL (checking their data CRC if kept) to the batch;
     * keys whose segment was reused since are skipped, and keys of later ksets win over earlier ones.
     */
    void load(KsetReader reader) throws CorruptMediaException {
        if (sending != null) {
            throw new IllegalStateException("load while the batch's writes are still in flight");
        }
        for (int i = 0; i < reader.keyNum(); i++) {
            CacheKey key = reader.key(i);
            if (!key.isDataless()) {
                if (key.segGen < key.seg.gen()) {
                    continue;
                }
                if (dataCrc) {
                    reader.verifyCrc(i, key);
                }
            }
            if (key.isDirty()) {
                dirtyBytes += key.dataBytes();
            }
            collapsed.computeIfAbsent(key.off >>> KeyTree.SUBTREE_SHIFT, stretch -> new KeySubtree()).insert(key);
        }
    }

    /** Bytes of the dirty key records loaded (overwritten ones included): what the log counted for the batch. */
    long dirtyBytes() {
        return dirtyBytes;
    }

    /** Writes of this batch sent and not completed yet, now. */
    int writesInFlight() {
        return writesInFlight.get();
    }

    /**
     * Writes every dirty extent of the batch, keeping at most {@code depth} writes in flight (asked again before each
     * write, so it may change meanwhile), then flushes the backing device. Returns the data bytes written (zeroed and
     * discarded ranges do not count); throws the first backing error once no write is in flight any more (the batch is
     * then sent again, all of it, by the next call). A batch with nothing to send (only miss fills, invalidations,
     * discards the backing device cannot take, or keys whose segment was reused) sends nothing, not even a flush.
     *
     * <p>When no write completes within the timeout, throws {@link WritesInFlightException} with the writes left in
     * flight: the next call waits for them again and goes on from where this one stopped, sending nothing twice.
     */
    long write(IntSupplier depth) throws IOException, InterruptedException {
        if (sending == null) {
            sending = submitList();
            if (sending == null) {
                return 0;
            }
        }
        Batch batch = sending;
        batch.send(depth);
        sending = null;
        if (batch.firstError != null) {
            throw batch.firstError;
        }
        backing.flush(); // rule 4: the batch's writes are durable before dirty_tail moves past it
        return batch.bytes;
    }

    /** The batch's writes, sorted and merged; null when it has none. */
    private Batch submitList() {
        Batch batch = new Batch();
        CacheKey first = null;
        long runLen = 0;
        for (KeySubtree stretch : collapsed.values()) {
            for (int i = 0; i < stretch.size(); i++) {
                CacheKey key = stretch.keyAt(i);
                if (!sendsRequest(key)) {
                    continue;
                }
                if (first != null && !first.isDataless() && !key.isDataless() && first.off + runLen == key.off
                        && first.dataRegionOffset() + runLen == key.dataRegionOffset()
                        && runLen + key.len <= MERGE_MAX) {
                    runLen += key.len;
                    continue;
                }
                if (first != null) {
                    batch.add(backingRequest(first, runLen, batch));
                }
                first = key;
                runLen = key.len;
            }
        }
        if (first == null) {
            return null;
        }
        batch.add(backingRequest(first, runLen, batch));
        return batch;
    }

    /**
     * Whether writing {@code key} back sends anything: a dirty key does, except a discard the backing device cannot
     * take (it would do nothing). Clean and INVALIDATE keys send nothing; they are in the batch only to cut the older
     * dirty keys they overlap, which must not reach the backing device over what it holds now.
     */
    private boolean sendsRequest(CacheKey key) {
        return key.isDirty() && ((key.flags & CacheKey.FLAG_DISCARD) == 0 || backing.supportsDiscard());
    }

    /**
     * The backing request that writes {@code len} bytes back from key {@code first} on: data from the region (merged
     * neighbours included), a write-zeroes for a ZERO key (the backing device writes zero blocks when it cannot zero a
     * range), a discard for a DISCARD key.
     */
    private BackingRequest backingRequest(CacheKey first, long len, BackingCompletion completion) {
        if ((first.flags & CacheKey.FLAG_ZERO) != 0) {
            return new RangeRequest(BackingOp.WRITE_ZEROES, first.off, len, completion);
        }
        if ((first.flags & CacheKey.FLAG_DISCARD) != 0) {
            return new RangeRequest(BackingOp.DISCARD, first.off, len, completion);
        }
        return new MemoryRequest(BackingOp.WRITE, region.view(first.dataRegionOffset(), len), first.off, completion);
    }

    /** One batch's writes: sent once each, at most a depth of them in flight; keeps the first error. */
    private final class Batch implements BackingCompletion {
        final List<BackingRequest> requests = new ArrayList<>();
        long bytes;
        /** Requests handed to the backing device so far; only the writeback thread changes it. */
        private int next;
        /** Guarded by this. */
        private int inFlight;
        /** Guarded by this. */
        private BackingIoException firstError;
        /** When a write last completed or was sent; guarded by this. */
        private long progressNanos;

        void add(BackingRequest request) {
            requests.add(request);
            if (request.op() == BackingOp.WRITE) {
                bytes += request.length();
            }
        }

        /** Sends what is left and waits until nothing is in flight and nothing more will be sent. */
        void send(IntSupplier depth) throws WritesInFlightException, InterruptedException {
            synchronized (this) {
                progressNanos = System.nanoTime();
            }
            while (true) {
                BackingRequest toSend = null;
                synchronized (this) {
                    if (firstError == null && next < requests.size() && inFlight < Math.max(1, depth.getAsInt())) {
                        toSend = requests.get(next++);
                        inFlight++;
                        writesInFlight.incrementAndGet();
                        progressNanos = System.nanoTime();
                    } else if (inFlight == 0 && (firstError != null || next == requests.size())) {
                        return;
                    } else {
                        long left = progressNanos + timeoutNanos - System.nanoTime();
                        if (left <= 0) {
                            throw new WritesInFlightException(inFlight, requests.size(),
                                    TimeUnit.NANOSECONDS.toMillis(timeoutNanos));
                        }
                        TimeUnit.NANOSECONDS.timedWait(this, left);
                    }
                }
                if (toSend != null) {
                    backing.submitDirect(toSend); // outside the lock: completions may come at once
                }
            }
        }

        @Override
        public void complete(BackingRequest request, BackingIoException error) {
            synchronized (this) {
                if (error != null && firstError == null) {
                    firstError = error;
                }
                inFlight--;
                writesInFlight.decrementAndGet();
                progressNanos = System.nanoTime();
                notifyAll();
            }
        }
    }

    /** Writes of the batch made no progress within the timeout; they are still in flight and are not sent again. */
    static final class WritesInFlightException extends IOException {
        WritesInFlightException(long pending, int requests, long millis) {
            super(pending + " backing write(s) of a batch of " + requests + " still in flight with none completed in "
                    + millis + " ms; waiting for them, not sending them again");
        }
    }
}
