package org.pcache.admin;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Locale;
import java.util.concurrent.CompletionException;
import org.pcache.cache.Pcache;

/**
 * The drain an operator asked for through the admin endpoint: at most one {@link Pcache#drainAsync} at a time, with
 * an id so that a client can tell its own drain from an earlier one. Asking while a drain runs joins it; asking after
 * it ended starts the next one. Progress (dirty bytes left, rate) is in the status document.
 *
 * <p>States move IDLE → RUNNING → DONE or FAILED, then RUNNING again on the next request.
 *
 * <p>Threading: any thread; the state is guarded by this object's monitor, which is never held while calling the
 * cache (its futures may complete on the calling thread).
 */
public final class Drain {

    /** Where a drain stands. */
    public enum State {
        /** No drain was asked for since the server started. */
        IDLE,
        /** Writeback is working towards the end of the log as it was when the drain started. */
        RUNNING,
        /** dirty_tail reached that position. */
        DONE,
        /** The cache failed the drain: writeback stopped for good, or the cache closed. */
        FAILED;

        /** The state in JSON: its name in lower case ("failed"), as the endpoint has always sent it. */
        @JsonValue
        public String text() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * The latest drain.
     *
     * @param id    1 for the first drain, counting up; 0 while idle
     * @param state where it stands
     * @param error why it failed (its cause), or null
     */
    public record Status(long id, State state, String error) {

        /** Whether the drain has ended, well or not. */
        public boolean ended() {
            return state == State.DONE || state == State.FAILED;
        }

        /** Whether the drain ended well. */
        public boolean done() {
            return state == State.DONE;
        }
    }

    private final Pcache cache;
    /** Guarded by this. */
    private long id;
    /** Guarded by this. */
    private State state = State.IDLE;
    /** Guarded by this. */
    private String error;

    public Drain(Pcache cache) {
        this.cache = cache;
    }

    /** Starts a drain unless one is running, and returns the drain now in progress (or already ended). */
    public Status start() {
        synchronized (this) {
            if (state == State.RUNNING) {
                return status();
            }
            id++;
            state = State.RUNNING;
            error = null;
        }
        cache.drainAsync().whenComplete((ignored, failure) -> ended(failure));
        return status();
    }

    public synchronized Status status() {
        return new Status(id, state, error);
    }

    /** The running drain ended; no other can have started meanwhile, since a request while running joins it. */
    private synchronized void ended(Throwable failure) {
        state = failure == null ? State.DONE : State.FAILED;
        error = failure == null ? null : reason(failure);
    }

    private static String reason(Throwable failure) {
        Throwable cause = failure instanceof CompletionException && failure.getCause() != null
                ? failure.getCause() : failure;
        return cause.getMessage() != null ? cause.getMessage() : cause.toString();
    }
}
