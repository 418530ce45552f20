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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Writes one kset's dirty data to the backing device (the core of dm-pcache's cache_writeback): the kset's live keys
 * are collapsed so later keys win (a ZERO, DISCARD or INVALIDATE key cuts the data keys before it in the kset and is cut
 * by those after it), the dirty extents go out in LBA order straight from the region, ZERO and DISCARD keys as
 * write-zeroes and discards of their range ({@link #backingRequest}), all in flight at
 * once as one batch (their completions reach the backing device's completion worker together), and the backing
 * device is flushed after the last one completed. Writes are sent once: a batch that outlives the timeout is waited
 * for again, never resent while in flight (a stalled device would otherwise collect copies of every write). Used by {@link Writeback} and, offline, by
 * {@link CacheImage#recover}.
 *
 * <p>Threading: owned by one thread.
 */
final class KsetWriteback {

    private final PmemRegion region;
    private final BackingDevice backing;
    private final boolean dataCrc;
    private final long timeoutNanos;
    private final KeySubtree collapsed = new KeySubtree();
    private long dirtyBytes;
    /** The loaded kset's writes, sent and not all completed yet; null when none are. */
    private Batch inFlight;

    /** Waits at most {@code timeout} for a kset's writes before it reports them stalled. */
    KsetWriteback(PmemRegion region, BackingDevice backing, boolean dataCrc, Duration timeout) {
        this.region = region;
        this.backing = backing;
        this.dataCrc = dataCrc;
        this.timeoutNanos = timeout.toNanos();
    }

    /** Takes the live keys of the kset {@code reader} just read as NORMAL (checking their data CRC if kept). */
    void load(KsetReader reader) throws CorruptMediaException {
        if (inFlight != null) {
            throw new IllegalStateException("load while the previous kset's writes are still in flight");
        }
        collapsed.clear();
        dirtyBytes = 0;
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
            collapsed.insert(key);
        }
    }

    /** Bytes of the dirty key records loaded (overwritten ones included): what the log counted for this kset. */
    long dirtyBytes() {
        return dirtyBytes;
    }

    /**
     * Writes every dirty extent of the loaded kset, then flushes the backing device. Returns the data bytes written
     * (zeroed and discarded ranges do not count); throws the first backing error (the kset may then be written again,
     * all of it). A kset with nothing to send (only miss fills, invalidations, discards the backing device cannot take,
     * or keys whose segment was reused) sends nothing, not even a flush.
     *
     * <p>Writes that have not all completed within the timeout throw {@link WritesInFlightException} and stay in
     * flight: the next call waits for them again instead of sending them a second time.
     */
    long write() throws IOException, InterruptedException {
        if (inFlight == null) {
            inFlight = submit();
            if (inFlight == null) {
                return 0;
            }
        }
        if (!inFlight.done.await(timeoutNanos, TimeUnit.NANOSECONDS)) {
            throw new WritesInFlightException(inFlight.done.getCount(), inFlight.requests,
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - inFlight.submittedNanos));
        }
        Batch completed = inFlight;
        inFlight = null;
        if (completed.firstError.get() != null) {
            throw completed.firstError.get();
        }
        backing.flush(); // rule 4: the kset's writes are durable before dirty_tail moves past it
        return completed.bytes;
    }

    /** Sends the loaded kset's dirty extents as one batch; null when it has none. */
    private Batch submit() {
        int count = 0;
        long bytes = 0;
        for (int i = 0; i < collapsed.size(); i++) {
            CacheKey key = collapsed.keyAt(i);
            if (sendsRequest(key)) {
                count++;
                bytes += key.dataBytes();
            }
        }
        if (count == 0) {
            return null;
        }
        Batch batch = new Batch(count, bytes, System.nanoTime());
        List<BackingRequest> requests = new ArrayList<>(count);
        for (int i = 0; i < collapsed.size(); i++) {
            CacheKey key = collapsed.keyAt(i);
            if (sendsRequest(key)) {
                requests.add(backingRequest(key, batch));
            }
        }
        backing.submitDirect(requests); // one hand-over to the completion worker, not one wake-up per write
        return batch;
    }

    /**
     * Whether writing {@code key} back sends anything: a dirty key does, except a discard the backing device cannot
     * take (it would do nothing).
     */
    private boolean sendsRequest(CacheKey key) {
        return key.isDirty() && ((key.flags & CacheKey.FLAG_DISCARD) == 0 || backing.supportsDiscard());
    }

    /**
     * The backing request that writes dirty key {@code key} back: its data from the region, a write-zeroes for a ZERO
     * key (the backing device writes zero blocks when it cannot zero a range), a discard for a DISCARD key.
     */
    private BackingRequest backingRequest(CacheKey key, BackingCompletion completion) {
        if ((key.flags & CacheKey.FLAG_ZERO) != 0) {
            return new RangeRequest(BackingOp.WRITE_ZEROES, key.off, key.len, completion);
        }
        if ((key.flags & CacheKey.FLAG_DISCARD) != 0) {
            return new RangeRequest(BackingOp.DISCARD, key.off, key.len, completion);
        }
        return new MemoryRequest(BackingOp.WRITE, region.view(key.dataRegionOffset(), key.len), key.off, completion);
    }

    /** One kset's writes, sent once: counts their completions and keeps the first error. */
    private static final class Batch implements BackingCompletion {
        final int requests;
        final long bytes;
        final long submittedNanos;
        final CountDownLatch done;
        final AtomicReference<BackingIoException> firstError = new AtomicReference<>();

        Batch(int requests, long bytes, long submittedNanos) {
            this.requests = requests;
            this.bytes = bytes;
            this.submittedNanos = submittedNanos;
            this.done = new CountDownLatch(requests);
        }

        @Override
        public void complete(BackingRequest request, BackingIoException error) {
            if (error != null) {
                firstError.compareAndSet(null, error);
            }
            done.countDown();
        }
    }

    /** Writes of the kset outlived the timeout; they are still in flight and are waited for, not sent again. */
    static final class WritesInFlightException extends IOException {
        WritesInFlightException(long pending, int requests, long millis) {
            super(pending + " of " + requests + " backing write(s) of the kset still in flight after " + millis
                    + " ms; waiting for them, not sending them again");
        }
    }
}
