package org.pcache.cache;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * Requests that found the cache full and wait for a segment to free (dm-pcache's defer_list): a full cache delays
 * writes, it never fails them.
 *
 * <p>A request records {@link #freeEpoch()} before it tries to allocate; {@link #defer} compares it again after
 * queueing, so a segment freed between the failed attempt and the queueing still wakes it.
 *
 * <p>Threading: any thread may defer; retries run on the executor given at construction, one batch at a time.
 */
final class DeferredRequests {

    /** A request that can be retried from where it stopped. */
    interface Waiter {
        /** Continues the request; it may defer itself again. */
        void retry();

        /** Ends the request with {@code error} (the cache is closing). */
        void fail(IOException error);
    }

    private final Executor executor;
    /** Counts segments freed; see the class comment. */
    private final AtomicLong freeEpoch = new AtomicLong();
    private final Object lock = new Object();
    /** Guarded by lock. */
    private final ArrayDeque<Waiter> waiting = new ArrayDeque<>();
    /** Why waiters are refused now (the cache is closing or failed), or null; guarded by lock. */
    private IOException refusal;
    private final AtomicBoolean retryQueued = new AtomicBoolean();
    private final LongAdder deferrals = new LongAdder();

    /** Retries run on {@code executor}. */
    DeferredRequests(Executor executor) {
        this.executor = executor;
    }

    /** How many segments were freed so far; read it before an allocation that may find the cache full. */
    long freeEpoch() {
        return freeEpoch.get();
    }

    /** A segment became free: retry what waits. */
    void segmentFreed() {
        freeEpoch.incrementAndGet();
        synchronized (freeEpoch) {
            freeEpoch.notifyAll();
        }
        kick();
    }

    /**
     * Blocks until a segment is freed after free epoch {@code epochSeen} or until {@link System#nanoTime()} reaches
     * {@code deadline}; true when one was. For close, which waits for room itself once it has failed the waiters.
     */
    boolean awaitFreed(long epochSeen, long deadline) throws InterruptedException {
        synchronized (freeEpoch) {
            while (freeEpoch.get() == epochSeen) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(freeEpoch, left);
            }
            return true;
        }
    }

    /**
     * Queues {@code waiter}, which failed to allocate after seeing free epoch {@code epochSeen}. Returns true when it
     * waits, so the caller can ask for space; false when the cache is closing and {@code waiter} has been failed.
     */
    boolean defer(Waiter waiter, long epochSeen) {
        IOException refused;
        synchronized (lock) {
            refused = refusal;
            if (refused == null) {
                waiting.add(waiter);
                deferrals.increment();
            }
        }
        if (refused != null) {
            waiter.fail(refused);
            return false;
        }
        if (freeEpoch.get() != epochSeen) {
            kick();
        }
        return true;
    }

    private void kick() {
        if (retryQueued.compareAndSet(false, true)) {
            try {
                executor.execute(this::retryAll);
            } catch (RejectedExecutionException e) {
                retryQueued.set(false); // closing: close() fails whatever still waits
            }
        }
    }

    private void retryAll() {
        retryQueued.set(false);
        List<Waiter> batch;
        synchronized (lock) {
            batch = List.copyOf(waiting);
            waiting.clear();
        }
        for (Waiter waiter : batch) {
            waiter.retry();
        }
    }

    /** Requests waiting now. */
    int waitingCount() {
        synchronized (lock) {
            return waiting.size();
        }
    }

    /** Times any request had to wait, since open. */
    long deferralCount() {
        return deferrals.sum();
    }

    /** Refuses further waiters and fails those waiting (dm-pcache completes them with EIO at stop). */
    void close() {
        fail(new IOException("cache closed while the request waited for free space"));
    }

    /** Refuses further waiters and fails those waiting with {@code error} (the cache failed, or is closing). */
    void fail(IOException error) {
        List<Waiter> left;
        IOException reason;
        synchronized (lock) {
            if (refusal == null) {
                refusal = error;
            }
            reason = refusal;
            left = List.copyOf(waiting);
            waiting.clear();
        }
        for (Waiter waiter : left) {
            waiter.fail(reason);
        }
    }
}
