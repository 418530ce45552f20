package org.pcache.cache;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.concurrent.TimeUnit;

/**
 * A named background thread that runs one step function over and over (dm-pcache's self re-arming delayed work):
 * immediately again while a step finds work, otherwise after {@code idleNanos} or as soon as someone kicks it.
 *
 * <p>A step that throws stops the worker: the owner records why (status shows it) and nothing retries in a tight
 * loop.
 *
 * <p>Threading: {@link #kick()} and {@link #stop()} may be called from any thread; kick only signals.
 */
final class CacheWorker {

    /** One unit of work. */
    interface Step {
        /** Does some work; true when there may be more to do right away. */
        boolean run() throws InterruptedException;
    }

    private static final Logger LOG = LoggerFactory.getLogger(CacheWorker.class);
    private static final long STOP_TIMEOUT_SECONDS = 60;

    private final Thread thread;
    private final Step step;
    private final long idleNanos;
    private final Object lock = new Object();
    /** Guarded by lock. */
    private boolean kicked;
    private volatile boolean stopping;
    private volatile Throwable failure;

    CacheWorker(String name, long idleNanos, Step step) {
        this.step = step;
        this.idleNanos = idleNanos;
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    /** Asks for a step now. */
    void kick() {
        synchronized (lock) {
            kicked = true;
            lock.notifyAll();
        }
    }

    boolean stopping() {
        return stopping;
    }

    /**
     * The worker's state for status: "running", "stopped", or "failed: " and why — {@code ownerFailure} (the reason
     * the owner stopped its work for good, or null) or an unexpected error that ended the thread.
     */
    String state(String ownerFailure) {
        if (ownerFailure != null) {
            return "failed: " + ownerFailure;
        }
        if (failure != null) {
            return "failed: " + failure;
        }
        return stopping ? "stopped" : "running";
    }

    /**
     * Waits up to {@code nanos} before retrying failed work, returning early only when stopping: new work arriving
     * must not cut a back-off short, or a failing device would be retried at the rate clients write.
     */
    void backOff(long nanos) throws InterruptedException {
        long deadline = System.nanoTime() + nanos;
        synchronized (lock) {
            while (!stopping) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
        }
    }

    /** Waits up to {@code nanos} for a kick or a stop: the idle wait between steps that found no work. */
    private void idle(long nanos) throws InterruptedException {
        long deadline = System.nanoTime() + nanos;
        synchronized (lock) {
            while (!kicked && !stopping) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
            kicked = false;
        }
    }

    /** Stops after the current step and joins the thread. */
    void stop() {
        stopping = true;
        kick();
        try {
            thread.join(TimeUnit.SECONDS.toMillis(STOP_TIMEOUT_SECONDS));
            if (thread.isAlive()) {
                LOG.warn("{} did not stop within {} s", thread.getName(), STOP_TIMEOUT_SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void loop() {
        try {
            while (!stopping) {
                if (!step.run()) {
                    idle(idleNanos);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            failure = e;
            LOG.error("{} stopped by an unexpected error", thread.getName(), e);
        }
    }
}
