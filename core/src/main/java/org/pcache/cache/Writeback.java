package org.pcache.cache;

import org.pcache.backing.BackingDevice;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;

/**
 * Writes dirty data back to the backing device in batches of ksets, in log order from dirty_tail (dm-pcache's
 * cache_writeback, batched): a batch runs from dirty_tail through the next barrier kset
 * ({@link KsetOnMedia#FLAG_BARRIER}: the last kset of a client flush, or a FUA write's), or to the end of the log, or until it
 * holds {@value #BATCH_BYTES_MAX} bytes of dirty key records or {@value #BATCH_KSETS_MAX} ksets, whichever comes first.
 * Its keys are collapsed (later keys win), its extents written sorted by offset, merged where contiguous, many in
 * flight ({@link KsetWriteback}); the backing device is flushed once, and only then does dirty_tail move past the batch.
 * How many writes are in flight follows the dirty level ({@link WritebackPace}).
 *
 * <p>Persistence order: rule 4 — every write of a batch completes and the backing device is flushed before dirty_tail
 * is persisted past it; batches go strictly in log order. So the backing device alone always holds the log up to
 * dirty_tail (each sector's latest value there), plus possibly any part of the batch in flight (each sector either as
 * before it or at its latest value in the batch), and a batch boundary is a barrier unless a cap or the end of the log
 * cut the batch short.
 *
 * <p>Failures: a backing error is counted, shown in status and retried with a growing back-off, forever, the whole
 * batch again — a batch is never skipped. Writes that make no progress within the writeback timeout are counted and
 * shown the same way, and waited for again: they are never sent a second time while in flight. A kset or key that
 * cannot be decoded stops writeback for good with a clear error and fails the cache ({@link CacheWorker}); so does a
 * failure of the region, and every drain still waiting fails with it.
 *
 * <p>Threading: all work runs on the worker thread {@code pcache-writeback}; counters, {@link #setWatermarks} and
 * {@link #drainTo} may be used from any thread.
 */
final class Writeback extends CacheWorker {

    private static final Logger LOG = LoggerFactory.getLogger(Writeback.class);
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long BACKOFF_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(5);
    /** A batch stops taking ksets once it holds this many bytes of dirty key records. */
    static final long BATCH_BYTES_MAX = 32L << 20;
    /** A batch takes at most this many ksets. */
    static final int BATCH_KSETS_MAX = 1024;

    private final CacheDevice device;
    private final FailStopRegion failStop;
    private final KsetLogWriter logWriter;
    private final KsetReader reader;
    private final Runnable onProgress;
    /** Owned by the worker thread. */
    private final KsetWriteback kset;
    private final LongAdder bytesWritten = new LongAdder();
    private final LongAdder ksetsWritten = new LongAdder();
    private final LongAdder batches = new LongAdder();
    private final LongAdder flushes = new LongAdder();
    private final LongAdder errors = new LongAdder();
    private final WritebackRate rate = new WritebackRate();
    private final WritebackPace pace;
    private final BooleanSupplier spaceWanted;
    /** Bytes of the data area: what the dirty level is measured against. */
    private final long capacity;
    private volatile String lastError;
    /** Drains waiting for dirty_tail to reach a log sequence number; guarded by itself. */
    private final List<Drain> drains = new ArrayList<>();

    /** Waits for dirty_tail to reach log sequence number {@code target}. */
    private record Drain(long target, CompletableFuture<Void> done) {
    }

    /**
     * {@code spaceWanted}: whether requests wait for free space (writeback then runs at full depth whatever the dirty
     * level); {@code onProgress} runs after each batch.
     */
    Writeback(CacheDevice device, FailStopRegion failStop, BackingDevice backing, KsetLogWriter logWriter,
              SegmentMap segments, CacheOptions options, BooleanSupplier spaceWanted, Runnable onProgress) {
        super("pcache-writeback", failStop, IDLE_NANOS);
        this.device = device;
        this.failStop = failStop;
        this.logWriter = logWriter;
        this.reader = new KsetReader(device, segments, backing.size());
        this.kset = new KsetWriteback(device.region(), backing, options.dataCrc(), options.writebackTimeout());
        this.pace = new WritebackPace(options.writebackDepth(), options.writebackLow(), options.writebackHigh());
        this.spaceWanted = spaceWanted;
        this.capacity = (long) device.segmentCount() * CacheDeviceLayout.SEGMENT_DATA_SIZE;
        this.onProgress = onProgress;
    }

    /** Sets the watermarks (percent of the data area dirty); see {@link WritebackPace}. */
    void setWatermarks(int low, int high) {
        pace.setWatermarks(low, high);
        kick();
    }

    /** Stops after the batch in progress, waiting until {@code deadline} at most; fails drains still waiting. */
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
                errors.sum(), lastError, rate.bytesPerSecond(), batches.sum(), flushes.sum(), kset.writesInFlight(),
                pace.fullDepth(), pace.lowPercent(), pace.highPercent());
    }

    @Override
    boolean step() throws InterruptedException, CorruptMediaException {
        long tailSeq = logWriter.dirtyTailSeq();
        long headSeq = logWriter.seq();
        if (tailSeq >= headSeq) {
            return false;
        }
        if (logWriter.dirtyBytes() > 0 && depth() == 0) {
            return false; // below the low watermark and nobody waits: idle until kicked (ksets without dirty data pass)
        }
        CachePos next = device.dirtyTail();
        kset.clear();
        long ksets = 0;
        boolean barrier = false;
        while (!barrier && tailSeq + ksets < headSeq && ksets < BATCH_KSETS_MAX
                && kset.dirtyBytes() < BATCH_BYTES_MAX) {
            KsetOnMedia.Status status = reader.read(next);
            if (!status.valid()) {
                throw reader.invalid(status);
            }
            if (status == KsetOnMedia.Status.NORMAL) {
                kset.load(reader);
                barrier = reader.barrier(); // the batch ends with it
            }
            next = reader.next();
            ksets++;
        }
        long dirty = kset.dirtyBytes();
        long written = writeBack();
        if (written < 0) {
            return false;
        }
        if (abandoned()) {
            return false; // closed meanwhile: the region may have a new owner; this batch is written back again
        }
        device.writeDirtyTail(next);
        logWriter.writtenBack(ksets, dirty);
        ksetsWritten.add(ksets);
        batches.increment();
        if (written > 0) {
            flushes.increment();
        }
        completeDrains(logWriter.dirtyTailSeq());
        onProgress.run();
        return true;
    }

    /** Writes to keep in flight now: 0 below the low watermark unless someone waits for writeback. */
    private int depth() {
        boolean wanted;
        synchronized (drains) {
            wanted = !drains.isEmpty();
        }
        return pace.depth(logWriter.dirtyBytes(), capacity, wanted || stopping() || spaceWanted.getAsBoolean());
    }

    /** The cache failed: writeback stopped for good, and no drain can complete any more. */
    @Override
    void cacheFailed() {
        failDrains(failStop.exception());
    }

    /** Writes back the batch loaded; returns the bytes written, or -1 when stopping interrupted the retries. */
    private long writeBack() throws InterruptedException {
        long backoff = BACKOFF_MIN_NANOS;
        while (true) {
            try {
                long bytes = kset.write(() -> Math.max(1, depth()));
                bytesWritten.add(bytes);
                rate.record(bytes);
                return bytes;
            } catch (KsetWriteback.WritesInFlightException e) {
                errors.increment();
                lastError = e.getMessage();
                LOG.warn("writeback of the batch at dirty_tail={} stalled: {}", device.dirtyTail(), e.getMessage());
                if (stopping()) {
                    return -1;
                }
                continue; // waiting for the writes in flight is the back-off: nothing is sent again
            } catch (IOException e) {
                errors.increment();
                lastError = e.getMessage();
                LOG.warn("writeback of the batch at dirty_tail={} failed, retrying in {} ms: {}", device.dirtyTail(),
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
