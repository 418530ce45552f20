package org.pcache.cache;

import java.util.Locale;
import java.util.Objects;

/**
 * Where a background worker (writeback or garbage collection) stands, and why it stopped for good if it failed.
 *
 * <p>Invariant: {@code cause} is set exactly when the phase is {@link Phase#FAILED}.
 *
 * @param phase running, stopped or failed
 * @param cause why the worker stopped for good (media it cannot decode, an unexpected error), or null
 */
public record WorkerState(Phase phase, String cause) {

    /** The worker's phase. */
    public enum Phase {
        /** Working, or waiting for work. */
        RUNNING,
        /** Stopped by the cache's close. */
        STOPPED,
        /** Stopped for good by something it cannot get past; the cache keeps serving what it can. */
        FAILED
    }

    /** A running worker. */
    public static final WorkerState RUNNING = new WorkerState(Phase.RUNNING, null);
    /** A stopped worker. */
    public static final WorkerState STOPPED = new WorkerState(Phase.STOPPED, null);

    public WorkerState {
        Objects.requireNonNull(phase, "phase");
        if ((phase == Phase.FAILED) != (cause != null)) {
            throw new IllegalArgumentException("a cause goes with FAILED and only with it: " + phase + ", " + cause);
        }
    }

    /** A worker that stopped for good because of {@code cause}. */
    public static WorkerState failed(String cause) {
        return new WorkerState(Phase.FAILED, cause);
    }

    /** Whether the worker stopped for good. */
    public boolean failed() {
        return phase == Phase.FAILED;
    }

    /** As status shows it: "running", "stopped", or "failed: " and the cause. */
    @Override
    public String toString() {
        return failed() ? "failed: " + cause : phase.name().toLowerCase(Locale.ROOT);
    }
}
