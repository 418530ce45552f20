package org.pcache.cache;

import org.pcache.backing.BackingDevice;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * Writes dirty data back to the backing device, one kset at a time in log order from dirty_tail (dm-pcache's
 * cache_writeback): the kset's keys are collapsed (later keys win), the dirty extents are written in LBA order
 * straight from the region, many in flight, the backing device is flushed, and only then does dirty_tail move.
 *
 * <p>Persistence order: rule 4 — every write of a kset completes and the backing device is flushed before dirty_tail
 * is persisted past it; ksets go strictly in log order. So the backing device alone always holds the writes of a
 * prefix of the log, plus possibly some writes of the one kset in flight, and since a client flush closes every kset,
 * a kset never mixes writes from before and after a flush.
 *
 * <p>Failures: a backing error is counted, shown in status and retried with a growing back-off, forever — a kset is
 * never skipped. Writes that outlive the writeback timeout are counted and shown the same way, and waited for again:
 * they are never sent a second time while in flight. A kset or key that cannot be decoded stops writeback for good with a clear error and fails the cache
 * ({@link CacheWorker}); so does a failure of the region, and every drain still waiting fails with it.
 *
 * <p>Threading: all work runs on the worker thread {@code pcache-writeback}; counters and {@link #drainTo} may be used
 * from any thread.
 */
final class Writeback extends CacheWorker {

    private static final Logger LOG = LoggerFactory.getLogger(Writeback.class);
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long BACKOFF_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final CacheDevice device;
    private final FailStopRegion failStop;
    private final KsetLogWriter logWriter;
    private final KsetReader reader;
    private final Runnable onProgress;
    /** Owned by the worker thread. */
    private final KsetWriteback kset;
    private final LongAdder bytesWritten = new LongAdder();
    private final LongAdder ksetsWritten = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final WritebackRate rate = new WritebackRate();
    private volatile String lastError;
    /** Drains waiting for dirty_tail to reach a log sequence number; guarded by itself. */
    private final List<Drain> drains = new ArrayList<>();

    /** Waits for dirty_tail to reach log sequence number {@code target}. */
    private record Drain(long target, CompletableFuture<Void> done) {
    }

    Writeback(CacheDevice device, FailStopRegion failStop, BackingDevice backing, KsetLogWriter logWriter,
              SegmentMap segments, boolean dataCrc, Duration timeout, Runnable onProgress) {
        super("pcache-writeback", failStop, IDLE_NANOS);
        this.device = device;
        this.failStop = failStop;
        this.logWriter = logWriter;
        this.reader = new KsetReader(device, segments, backing.size());
        this.kset = new KsetWriteback(device.region(), backing, dataCrc, timeout);
        this.onProgress = onProgress;
    }

    /** Stops after the kset in progress, waiting until {@code deadline} at most; fails drains still waiting. */
    @Override
    boolean stop(long deadline) throws InterruptedException {
        cancelDrains();
        return super.stop(deadline);
    }

    /** Fails every drain still waiting (the cache is closing). */
    void cancelDrains() {
        failDrains(new IOException("cache closed before the drain completed"));
    }

    /**
     * Completes {@code done} once dirty_tail is at or past log sequence number {@code target}
     * ({@link KsetLogWriter#seq()}), at once when writeback passed it already.
     */
    void drainTo(long target, CompletableFuture<Void> done) {
        boolean reached;
        boolean failed;
        synchronized (drains) {
            reached = logWriter.dirtyTailSeq() >= target;
            failed = failStop.failed();
            if (!reached && !failed) {
                drains.add(new Drain(target, done));
                return;
            }
        }
        if (reached) {
            done.complete(null);
        } else {
            done.completeExceptionally(failStop.exception());
        }
    }

    WritebackStatus status() {
        return new WritebackStatus(state(), logWriter.dirtyBytes(), bytesWritten.sum(), ksetsWritten.sum(),
                errors.sum(), lastError, rate.bytesPerSecond());
    }

    @Override
    boolean step() throws InterruptedException, CorruptMediaException {
        CachePos tail = device.dirtyTail();
        if (logWriter.dirtyTailSeq() >= logWriter.seq()) {
            return false;
        }
        KsetOnMedia.Status status = reader.read(tail);
        if (!status.valid()) {
            throw reader.invalid(status);
        }
        CachePos next = reader.next();
        long dirty = 0;
        if (status == KsetOnMedia.Status.NORMAL) {
            dirty = writeBack();
            if (dirty < 0) {
                return false;
            }
        }
        if (abandoned()) {
            return false; // closed meanwhile: the region may have a new owner; this kset is written back again
        }
        device.writeDirtyTail(next);
        logWriter.writtenBack(dirty);
        ksetsWritten.increment();
        completeDrains(logWriter.dirtyTailSeq());
        onProgress.run();
        return true;
    }

    /** The cache failed: writeback stopped for good, and no drain can complete any more. */
    @Override
    void cacheFailed() {
        failDrains(failStop.exception());
    }

    /** Writes back the kset just read; returns its dirty bytes, or -1 when stopping interrupted the retries. */
    private long writeBack() throws CorruptMediaException, InterruptedException {
        kset.load(reader);
        long backoff = BACKOFF_MIN_NANOS;
        while (true) {
            try {
                long bytes = kset.write();
                bytesWritten.add(bytes);
                rate.record(bytes);
                return kset.dirtyBytes();
            } catch (KsetWriteback.WritesInFlightException e) {
                errors.increment();
                lastError = e.getMessage();
                LOG.warn("writeback of kset at dirty_tail={} stalled: {}", device.dirtyTail(), e.getMessage());
                if (stopping()) {
                    return -1;
                }
                continue; // waiting for the writes in flight is the back-off: nothing is sent again
            } catch (IOException e) {
                errors.increment();
                lastError = e.getMessage();
                LOG.warn("writeback of kset at dirty_tail={} failed, retrying in {} ms: {}", device.dirtyTail(),
                        TimeUnit.NANOSECONDS.toMillis(backoff), e.getMessage());
            }
            backOff(backoff);
            if (stopping()) {
                return -1;
            }
            backoff = Math.min(backoff * 2, BACKOFF_MAX_NANOS);
        }
    }

    private void completeDrains(long tailSeq) {
        List<Drain> reached = new ArrayList<>();
        synchronized (drains) {
            drains.removeIf(drain -> drain.target <= tailSeq && reached.add(drain));
        }
        for (Drain drain : reached) {
            drain.done.complete(null);
        }
    }

    private void failDrains(IOException error) {
        List<Drain> failed;
        synchronized (drains) {
            failed = List.copyOf(drains);
            drains.clear();
        }
        for (Drain drain : failed) {
            drain.done.completeExceptionally(error);
        }
    }
}
