package org.pcache.nbd;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Bounds what one connection has in flight: requests read but not yet answered, and the bytes of their
 * buffers. The reader blocks in {@link #acquire} when either limit is reached, which stops it reading the
 * socket: the client feels back-pressure and the server's memory stays bounded. A request larger than the
 * byte limit is admitted when nothing else is in flight.
 *
 * <p>Threading: acquired by the reader thread, released by the reply writer; counters guarded by
 * {@link #lock}.
 */
final class RequestWindow {

    private final int maxRequests;
    private final long maxBytes;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** Guarded by lock. */
    private int requests;
    /** Guarded by lock. */
    private long bytes;

    RequestWindow(int maxRequests, long maxBytes) {
        this.maxRequests = maxRequests;
        this.maxBytes = maxBytes;
    }

    /** Admits the request if it fits now; never blocks. */
    boolean tryAcquire(long length) {
        lock.lock();
        try {
            if (requests >= maxRequests || (requests > 0 && bytes + length > maxBytes)) {
                return false;
            }
            requests++;
            bytes += length;
            return true;
        } finally {
            lock.unlock();
        }
    }

    void acquire(long length) throws InterruptedException {
        lock.lock();
        try {
            while (requests >= maxRequests || (requests > 0 && bytes + length > maxBytes)) {
                changed.await();
            }
            requests++;
            bytes += length;
        } finally {
            lock.unlock();
        }
    }

    void release(long length) {
        lock.lock();
        try {
            requests--;
            bytes -= length;
            assert requests >= 0 && bytes >= 0 : "released more than acquired: " + requests + " " + bytes;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /** Waits until nothing is in flight; false if {@code timeout} passed first. */
    boolean awaitEmpty(long timeout, TimeUnit unit) throws InterruptedException {
        long nanos = unit.toNanos(timeout);
        lock.lock();
        try {
            while (requests > 0) {
                if (nanos <= 0) {
                    return false;
                }
                nanos = changed.awaitNanos(nanos);
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    int requests() {
        lock.lock();
        try {
            return requests;
        } finally {
            lock.unlock();
        }
    }
}
