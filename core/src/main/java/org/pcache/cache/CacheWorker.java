package org.pcache.cache;

import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.RegionFailedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The skeleton of the cache's background workers, writeback and garbage collection (dm-pcache's self re-arming
 * delayed work): a named daemon thread runs {@link #step()} over and over, immediately again while a step finds work,
 * otherwise after {@code idleNanos} or as soon as someone kicks it.
 *
 * <p>Failures: a step that meets media it cannot decode ({@link CorruptMediaException}) or throws unexpectedly stops
 * the worker for good and fails the cache ({@link FailStopRegion#fail}: logged once, shown in status, every later
 * write refused), so a cache never looks healthy while its writeback or GC is dead; the worker's own cause is shown in
 * {@link #state()}, and nothing retries in a tight loop. A worker also stops, after its current step, once the cache
 * failed for any other reason ({@link #cacheFailed()} tells it). Errors a worker can retry (a failing backing device)
 * it handles inside its step, with {@link #backOff}.
 *
 * <p>Threading: {@link #kick()}, {@link #stop}, {@link #state()} and {@link #failure()} may be called from any
 * thread; kick only signals. Everything else runs on the worker thread.
 */
abstract class CacheWorker {

    private static final Logger LOG = LoggerFactory.getLogger(CacheWorker.class);

    private final Thread thread;
    private final FailStopRegion failStop;
    private final long idleNanos;
    private final Object lock = new Object();
    /** Guarded by lock. */
    private boolean kicked;
    private volatile boolean stopping;
    /** Set by a stop whose deadline passed while the worker was still in its step. */
    private volatile boolean abandoned;
    /** Why the worker stopped for good, or null; written once, by the worker thread. */
    private volatile String failure;

    CacheWorker(String name, FailStopRegion failStop, long idleNanos) {
        this.failStop = failStop;
        this.idleNanos = idleNanos;
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
    }

    /** Does some work; true when there may be more to do right away. */
    abstract boolean step() throws InterruptedException, CorruptMediaException;

    /**
     * Called once on the worker thread when it stopped because the cache failed (by this worker or otherwise), with the
     * failure already recorded; nothing by default.
     */
    void cacheFailed() {
    }

    void start() {
        thread.start();
    }

    /** Asks for a step now: there may be work. */
    void kick() {
        synchronized (lock) {
            kicked = true;
            lock.notifyAll();
        }
    }

    /**
     * Stops after the current step and waits for the thread until {@code deadline} ({@link System#nanoTime()}) at
     * most; true when it ended. A worker still in its step then is abandoned: it ends after that step, and a step
     * that checks {@link #abandoned()} writes nothing more to the region.
     */
    boolean stop(long deadline) throws InterruptedException {
        stopping = true;
        kick();
        if (thread.getState() == Thread.State.NEW) {
            return true;
        }
        boolean ended = thread.join(Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
        if (!ended) {
            abandoned = true;
            LOG.warn("{} did not stop by close's deadline; it ends after its current step", thread.getName());
        }
        return ended;
    }

    /** The close that stopped this worker stopped waiting for it: what the step was doing is no longer wanted. */
    boolean abandoned() {
        return abandoned;
    }

    /** Stopping: the cache is closing, or failed. */
    boolean stopping() {
        return stopping || failStop.failed();
    }

    /** Why the worker stopped for good, or null while it has not. */
    String failure() {
        return failure;
    }

    /** The worker's state for status: failed when it failed the cache, stopped when the cache failed otherwise. */
    WorkerState state() {
        String cause = failure;
        if (cause != null) {
            return WorkerState.failed(cause);
        }
        return stopping() ? WorkerState.STOPPED : WorkerState.RUNNING;
    }

    /**
     * Waits up to {@code nanos} before retrying failed work, returning early only when stopping: new work arriving
     * must not cut a back-off short, or a failing device would be retried at the rate clients write.
     */
    void backOff(long nanos) throws InterruptedException {
        long deadline = System.nanoTime() + nanos;
        synchronized (lock) {
            while (!stopping()) {
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
            while (!kicked && !stopping()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
            kicked = false;
        }
    }

    private void loop() {
        try {
            while (!stopping()) {
                if (!step()) {
                    idle(idleNanos);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RegionFailedException e) {
            failStop.fail(thread.getName() + " met a region failure", e); // recorded already unless it is the first
        } catch (CorruptMediaException e) {
            failure = e.getMessage();
            failStop.fail(thread.getName() + " stopped for good on corrupt media", e);
        } catch (RuntimeException | Error e) {
            failure = e.toString();
            failStop.fail(thread.getName() + " stopped by an unexpected error", e);
        }
        if (failStop.failed()) {
            cacheFailed();
        }
    }
}
