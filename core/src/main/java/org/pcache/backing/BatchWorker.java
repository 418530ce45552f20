package org.pcache.backing;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A list of work items drained by one named thread, the Java form of dm-pcache's submit_list/complete_list with
 * their work functions: producers append under a short lock and kick the worker; the worker takes the whole
 * batch under the lock (list_splice_init) and handles it unlocked.
 *
 * <p>Invariants: items are handled in the order they were added, each exactly once, all on the worker thread.
 * After {@link #stop} began, {@link #add} and {@link #addAll} refuse; items added before it are still handled.
 *
 * <p>Threading: {@link #add} and {@link #addAll} from any thread, including one holding its own locks (they take
 * only this worker's lock, briefly, and never run an item). {@link #start} and {@link #stop} by the owner.
 */
final class BatchWorker<T> {

    private static final Logger LOG = LoggerFactory.getLogger(BatchWorker.class);

    private final Consumer<? super T> handler;
    private final Thread thread;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition kicked = lock.newCondition();
    /** Items not yet taken. Guarded by lock. */
    private ArrayList<T> pending = new ArrayList<>();
    /** The batch being handled; swapped with pending under the lock, read only by the worker thread. */
    private ArrayList<T> batch = new ArrayList<>();
    /** Set once by stop(). Guarded by lock. */
    private boolean stopping;

    BatchWorker(String threadName, Consumer<? super T> handler) {
        this.handler = handler;
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).unstarted(this::run);
    }

    void start() {
        thread.start();
    }

    /** Appends {@code item} and kicks the worker; false when the worker is stopping and the item was not taken. */
    boolean add(T item) {
        lock.lock();
        try {
            if (stopping) {
                return false;
            }
            pending.add(item);
            kicked.signal();
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Appends {@code items} in order and kicks the worker once; false when stopping and none was taken. */
    boolean addAll(List<? extends T> items) {
        lock.lock();
        try {
            if (stopping) {
                return false;
            }
            if (!items.isEmpty()) {
                pending.addAll(items);
                kicked.signal();
            }
            return true;
        } finally {
            lock.unlock();
        }
    }

    boolean isWorkerThread() {
        return Thread.currentThread() == thread;
    }

    /** Refuses new items, lets the worker handle every item already added, and joins it. */
    void stop() {
        lock.lock();
        try {
            stopping = true;
            kicked.signal();
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void run() {
        while (takeBatch()) {
            for (T item : batch) {
                handle(item);
            }
            batch.clear();
        }
    }

    private void handle(T item) {
        try {
            handler.accept(item);
        } catch (Throwable t) {
            // Top of the worker loop: one failing item (typically a caller's completion callback) is logged here,
            // once, and the worker goes on; otherwise every later request would hang.
            LOG.error("worker={} item failed, continuing: {}", thread.getName(), item, t);
        }
    }

    /** Waits for work and swaps it into batch; false when stopping and nothing is left. */
    private boolean takeBatch() {
        lock.lock();
        try {
            while (pending.isEmpty()) {
                if (stopping) {
                    return false;
                }
                kicked.awaitUninterruptibly();
            }
            ArrayList<T> taken = pending;
            pending = batch;
            batch = taken;
            return true;
        } finally {
            lock.unlock();
        }
    }
}
