package org.pcache.backing;

import java.util.ArrayList;

/**
 * Holds back the completions of requests submitted together until the submitting call is done, then hands them to
 * the completion worker in one go (the block layer's plug, applied to the completion list). An engine that completes
 * on the submitter's thread (an in-memory one) would otherwise wake the completion worker once per request: it
 * handles each completion before the next arrives and parks again, and every wake-up is an unpark on the
 * submitter's thread.
 *
 * <p>Invariants: every completion held is handed to the worker exactly once, in the order held, when the plug is
 * released; after that, {@link #hold} refuses and completions go to the worker directly. Only counted requests are
 * held, so the device cannot stop its worker while the plug holds any.
 *
 * <p>Threading: {@link #hold} from any thread (an engine I/O thread may complete a request of the batch before the
 * submission ends); {@link #release} once, by the submitting thread.
 */
final class CompletionPlug {

    private final BatchWorker<Runnable> completeWorker;
    /** Completions waiting for the release; null once released. Guarded by this. */
    private ArrayList<Runnable> held = new ArrayList<>();

    CompletionPlug(BatchWorker<Runnable> completeWorker) {
        this.completeWorker = completeWorker;
    }

    /** Holds {@code completion} until the release; false when the plug was already released. */
    synchronized boolean hold(Runnable completion) {
        if (held == null) {
            return false;
        }
        held.add(completion);
        return true;
    }

    /** Hands every held completion to the worker, kicking it once. */
    synchronized void release() {
        if (!held.isEmpty()) {
            boolean queued = completeWorker.addAll(held);
            assert queued : "completion worker stopped while a plug held " + held.size() + " completions";
        }
        held = null;
    }
}
