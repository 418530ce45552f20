package org.pcache.backing;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * In-flight accounting with a stop gate (dm-pcache's inflight_reqs and its wait queue): counts every request from
 * submission to the end of its completion, and lets stop wait for the count to drain.
 *
 * <p>Invariants: the count is never negative; once {@link #close} ran, {@link #enter} reports every new request as
 * refused (it is still counted until it exits, so a refused request cannot outlive the workers).
 *
 * <p>Threading: {@link #enter} and {@link #exit} from any thread, lock-free except for the last exit after close;
 * {@link #close} and {@link #awaitZeroAfterClose} by the stopping thread.
 */
final class InflightCounter {

    /** High bit of {@link #state}: set by close. The low bits hold the count. */
    private static final long CLOSED = 1L << 62;

    private final AtomicLong state = new AtomicLong();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition drained = lock.newCondition();

    /** Counts a new request; true when it is admitted, false when the gate is closed (still counted). */
    boolean enter() {
        return (state.getAndIncrement() & CLOSED) == 0;
    }

    void exit() {
        long now = state.decrementAndGet();
        assert (now & ~CLOSED) >= 0 : "in-flight count below zero";
        if (now == CLOSED) {
            // Signal under the lock so a waiter between its check and its await cannot miss it.
            lock.lock();
            try {
                drained.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    long count() {
        return state.get() & ~CLOSED;
    }

    /** Closes the gate; idempotent. */
    void close() {
        state.getAndUpdate(value -> value | CLOSED);
    }

    /**
     * Waits up to {@code timeoutNanos} until every counted request exited; true when they did. An interrupt does not
     * end the wait early (a request cannot be abandoned while an engine may still use its memory); the interrupt
     * flag is kept.
     */
    boolean awaitZeroAfterClose(long timeoutNanos) {
        assert (state.get() & CLOSED) != 0 : "await before close";
        boolean interrupted = false;
        long remaining = timeoutNanos;
        lock.lock();
        try {
            while (state.get() != CLOSED) {
                if (remaining <= 0) {
                    return false;
                }
                try {
                    remaining = drained.awaitNanos(remaining);
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            return true;
        } finally {
            lock.unlock();
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
