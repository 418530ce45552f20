package org.pcache.backing;

import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A backing request on its way through the device (dm-pcache's pcache_backing_dev_req with its status and list
 * node): the engine's callback for it, and the work item that ends it on the completion worker.
 *
 * <p>Invariants: the status is recorded exactly once (a second engine callback is a contract violation and
 * throws); the request is ended exactly once, after its status was recorded; ending runs the request's
 * {@link BackingCompletion}, then for a {@link SliceRequest} releases the upper request with the status, then
 * leaves the in-flight count, in that order even when the completion throws.
 *
 * <p>Threading: {@link #completed} on any thread (an engine I/O thread, or the submitter for a request refused or
 * failed before the engine); {@link #run} on the completion worker only, except for a request delivered
 * {@link Delivery#WHERE_REPORTED}, which ends on the thread that reported its status.
 */
final class InflightRequest implements IoEngine.IoCallback, Runnable {

    private static final VarHandle STATUS_RECORDED;

    static {
        try {
            STATUS_RECORDED = MethodHandles.lookup().findVarHandle(InflightRequest.class, "statusRecorded",
                    boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Where a request's completion runs. */
    enum Delivery {
        /** On the completion worker: never on an engine thread, the submitter's, or under the submitter's lock. */
        COMPLETION_WORKER,
        /** On the thread that reports the status (an engine I/O thread, or the submitter's for a refused request). */
        WHERE_REPORTED
    }

    private final BackingRequest request;
    private final BatchWorker<Runnable> completeWorker;
    private final Delivery delivery;
    /** The plug of the batch this request was submitted in, or null for a request submitted alone. */
    private final CompletionPlug plug;
    private final InflightCounter inflight;
    /** Written once by the thread that wins {@link #STATUS_RECORDED}; read by the completion worker after the
     *  hand-over through the completion list's lock (and the plug's, when it was held). */
    private BackingIoException error;
    @SuppressWarnings("unused") // accessed through STATUS_RECORDED
    private volatile boolean statusRecorded;

    InflightRequest(BackingRequest request, BatchWorker<Runnable> completeWorker, Delivery delivery,
                    InflightCounter inflight) {
        this(request, completeWorker, delivery, null, inflight);
    }

    /** A request of a batch whose completions {@code plug} holds until the submission is done. */
    InflightRequest(BackingRequest request, BatchWorker<Runnable> completeWorker, Delivery delivery,
                    CompletionPlug plug, InflightCounter inflight) {
        this.request = request;
        this.completeWorker = completeWorker;
        this.delivery = delivery;
        this.plug = plug;
        this.inflight = inflight;
    }

    BackingRequest request() {
        return request;
    }

    /**
     * Records the status and moves the request onto the completion list (dm-pcache's backing_dev_bio_end), or into
     * its batch's plug while that still holds, or ends it here when it is delivered where reported. Returns false
     * when the completion worker has already stopped, which only happens to a request refused after stop.
     */
    boolean queueCompletion(BackingIoException status) {
        if (!STATUS_RECORDED.compareAndSet(this, false, true)) {
            throw new IllegalStateException("backing request completed twice: " + describe());
        }
        this.error = status;
        if (delivery == Delivery.WHERE_REPORTED) {
            run();
            return true;
        }
        return plug != null && plug.hold(this) || completeWorker.add(this);
    }

    @Override
    public void completed(IOException status) {
        boolean queued = queueCompletion(status == null ? null : asBackingError(status));
        assert queued : "completion worker stopped while a request was in flight: " + describe();
    }

    /** Ends the request on the completion worker (dm-pcache's backing_dev_req_end). */
    @Override
    public void run() {
        try {
            request.completion().complete(request, error);
        } finally {
            try {
                if (request instanceof SliceRequest slice) {
                    slice.upper().release(error);
                }
            } finally {
                inflight.exit();
            }
        }
    }

    private BackingIoException asBackingError(IOException status) {
        if (status instanceof BackingIoException typed) {
            return typed;
        }
        return new BackingIoException(BackingIoException.Reason.IO_ERROR, operation(), request.backingOffset(),
                request.length(), status.getMessage(), status);
    }

    String operation() {
        return switch (request.op()) {
            case READ -> "read";
            case WRITE -> "write";
            case DISCARD -> "discard";
            case WRITE_ZEROES -> "write-zeroes";
        };
    }

    private String describe() {
        return operation() + " offset=" + request.backingOffset() + " length=" + request.length();
    }

    @Override
    public String toString() {
        return describe() + (error == null ? "" : " error=" + error.reason());
    }
}
