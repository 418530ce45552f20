package org.pcache.cache;

import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * One kset stream (dm-pcache's pcache_cache_kset): keys are encoded into an in-memory kset as they are appended, and
 * the kset is written to the log ({@link KsetLogWriter}) when it holds {@link KsetOnMedia#KEYS_MAX} keys, when a FUA write
 * or a flush asks for it, or at the latest {@code flushDelay} after its first pending key. A kset a FUA write or a client
 * flush wrote carries {@link KsetOnMedia#FLAG_BARRIER}: writeback ends its batches there.
 *
 * <p>Invariants: the staging buffer holds exactly {@link #keyNum} encoded keys, in append order; a key's record is
 * encoded from the key as it was at append time (later cuts of the in-memory key do not change the record);
 * {@link #data} covers the data of every pending key.
 *
 * <p>Persistence order: rule 1 — writers copy a key's data into the region and append the key without flushing it;
 * the close flushes the data of all pending keys ({@link DataRuns}), before it takes the log writer's lock, and
 * {@link KsetLogWriter#write} drains it before the kset goes out. So closes of different streams flush their data in
 * parallel, and on a MAP_SYNC region (where a flush writes back every cache line) and on an msync region alike
 * the log writer's lock covers only the terminator, the drain and the kset. The writer's copy happens-before the close through this object's monitor, whichever thread closes.
 *
 * <p>Threading: guarded by this object's monitor; appends come from writers holding a subtree lock (lock order:
 * subtree, kset, log writer, segment map). The timer runs on the cache's scheduler. A timer that fires after its batch
 * was already closed only closes the next batch early, which is always safe, so timers are never cancelled. A timer
 * whose close finds the log full tries again {@link #RETRY_DELAY_NANOS} later; one whose close throws fails the cache
 * ({@link FailStopRegion#fail}), since its keys would otherwise wait unwritten while the cache looks healthy.
 */
final class Kset {

    private static final long RETRY_DELAY_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final KsetLogWriter log;
    private final FailStopRegion failStop;
    private final ScheduledExecutorService timer;
    private final long flushDelayNanos;
    private final MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
    private final KsetOnMedia kset = new KsetOnMedia().wrap(staging);
    private final KeyOnMedia record = new KeyOnMedia();
    /** Guarded by this. */
    private final DataRuns data = new DataRuns();
    /** Guarded by this. */
    private int keyNum;
    /** Bytes of the dirty keys among the pending ones; guarded by this. */
    private long dirtyBytes;
    /** A flush is scheduled; guarded by this. */
    private boolean timerArmed;
    /** Guarded by this. */
    private boolean timerStopped;

    Kset(KsetLogWriter log, FailStopRegion failStop, ScheduledExecutorService timer, long flushDelayNanos) {
        this.log = log;
        this.failStop = failStop;
        this.timer = timer;
        this.flushDelayNanos = flushDelayNanos;
    }

    /**
     * Appends {@code key}; with {@link Durability#FUA} the kset is written out before this returns. Returns false,
     * leaving the kset without the key, when it had to be written and the log is full. Sets a data-less key's birth
     * ({@link CacheKey}); the caller inserts the key into the index only after this.
     */
    synchronized boolean append(CacheKey key, Durability durability) {
        encode(key, keyNum);
        if (key.isDataless()) {
            // Its birth: the log head now. Read under this monitor, so a key appended after a kset of this stream
            // closed at log sequence number S is born after S, and one born at or before S is in a kset up to S.
            key.segGen = log.seq();
        } else {
            data.add(key.dataRegionOffset(), key.len);
        }
        keyNum++;
        long dirty = key.isDirty() ? key.dataBytes() : 0;
        dirtyBytes += dirty;
        if (keyNum == KsetOnMedia.KEYS_MAX || durability == Durability.FUA) {
            if (!closeLocked(durability == Durability.FUA)) {
                keyNum--;
                dirtyBytes -= dirty;
                return false;
            }
        } else if (!timerArmed) {
            arm(flushDelayNanos);
        }
        return true;
    }

    /**
     * Writes out the pending keys, as a {@link KsetOnMedia#FLAG_BARRIER barrier} kset when a client flush asks;
     * false when the log is full (they stay pending).
     */
    synchronized boolean close(boolean barrier) {
        return closeLocked(barrier);
    }

    /** Keys appended and not written out yet. */
    synchronized int pendingKeys() {
        return keyNum;
    }

    synchronized void stopTimer() {
        timerStopped = true;
    }

    private boolean closeLocked(boolean barrier) {
        if (keyNum == 0) {
            return true;
        }
        int size = kset.sealKeys(keyNum, barrier);
        data.flush(failStop); // the cache's region; outside the log writer's lock: on a MAP_SYNC region this is the slow part of a close
        if (!log.write(staging, size, dirtyBytes, barrier)) {
            return false;
        }
        keyNum = 0;
        dirtyBytes = 0;
        data.clear();
        return true;
    }

    private void encode(CacheKey key, int index) {
        KeyOnMedia at = kset.key(index, record).clear().off(key.off).len(key.len);
        if (key.isDataless()) {
            at.flags(key.flags & CacheKey.DATALESS_FLAGS).cacheSegId(KeyOnMedia.NO_SEGMENT);
            return;
        }
        at.flags(key.flags & CacheKey.FLAG_CLEAN)
                .cacheSegId(key.seg.id())
                .cacheSegOff(key.segOff)
                .segGen(key.segGen)
                .dataCrc(key.crc == null ? 0 : key.crc.value());
    }

    private void arm(long delayNanos) {
        if (timerStopped) {
            return;
        }
        try {
            timer.schedule(this::flushByTimer, delayNanos, TimeUnit.NANOSECONDS);
            timerArmed = true;
        } catch (RejectedExecutionException e) {
            timerStopped = true; // the cache is closing; its final flush writes what is pending
        }
    }

    private synchronized void flushByTimer() {
        timerArmed = false;
        try {
            if (keyNum > 0 && !closeLocked(false)) {
                arm(RETRY_DELAY_NANOS);
            }
        } catch (RuntimeException | Error e) {
            failStop.fail("the kset timer's close of " + keyNum + " pending key(s) failed", e);
        }
    }
}
