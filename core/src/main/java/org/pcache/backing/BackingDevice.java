package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The slow device behind the cache (dm-pcache's backing_dev.c): takes {@link BackingRequest}s (reads and writes of
 * memory, discards and write-zeroes of a range), hands them to an {@link IoEngine}, and reports each one's status
 * through its {@link BackingCompletion}. It knows engines only through {@link IoEngine}, so any engine that keeps
 * that contract (positional file I/O, NBD, a future io_uring one) slots in unchanged.
 *
 * <p>Submission: {@link #submit} queues the request for the submit worker and returns at once; it never blocks
 * and never performs I/O, so it is safe from any thread, including one that holds a lock. {@link #submitDirect}
 * hands the request to the engine on the caller's thread. Either way the status arrives on the completion worker
 * ({@code <prefix>-complete}): never on an engine's I/O thread, never on the submitter's thread, so never under
 * the submitter's lock. {@link #submitInline} is the one exception: its completion runs where the engine reports
 * the status, for callers whose completion is short and takes no lock. After a request's completion ran, a
 * {@link SliceRequest} releases its upper request with the same status.
 *
 * <p>Errors never escape {@code submit} or {@code submitDirect}: a range past the end of the device fails with
 * {@link BackingIoException.Reason#OUT_OF_RANGE}, an offset or length that breaks {@link #alignment()} with
 * {@link BackingIoException.Reason#MISALIGNED}, an I/O failure with {@link BackingIoException.Reason#IO_ERROR},
 * all through the completion. Memory at any address is accepted: engines that need aligned memory copy through
 * an aligned bounce buffer.
 *
 * <p>Lifecycle: {@link #start} starts the two workers; {@link #stop} refuses new requests, waits until every
 * request already taken (queued, at the engine, or waiting for its completion) has completed, joins the workers
 * and closes the engine. Requests queued before stop run normally. A request submitted while stop is waiting
 * completes with {@link BackingIoException.Reason#STOPPED}; once the workers are gone, {@code submit} throws
 * {@link IllegalStateException}. Stop does not flush: call {@link #flush()} first when the data must be durable.
 *
 * <p>Threading: every method may be called from any thread, except that {@link #stop} and the blocking
 * {@link #read}/{@link #write} must not be called from a completion callback (they would wait for the thread
 * they run on; they throw {@link IllegalStateException} instead). {@link #flush()} may be called from a completion
 * callback, as writeback does after its last write.
 */
public final class BackingDevice implements AutoCloseable {

    /*
     * Implementation notes.
     *
     * A request travels: caller -> [submit list -> submit worker] -> engine -> engine callback on any thread ->
     * completion list -> completion worker -> BackingCompletion, upper release, in-flight exit. The bracketed
     * part is skipped by submitDirect and submitInline, the completion list and worker by submitInline. Both lists
     * are BatchWorkers (short lock, whole-batch take). A batch given to submitDirect(List) passes its completions
     * through a CompletionPlug, which holds them until the batch is dispatched and then adds them to the completion
     * list in one go.
     *
     * Validation runs on the submitting thread before anything is queued; a request that fails it, or that is
     * refused by a stopping device, goes straight onto the completion list (for submitInline: ends at once), so its
     * callback still runs where its kind of submission says and still counts as in flight until it ends.
     *
     * Stop order, and why it cannot lose a completion: (1) close the in-flight gate, so every later request is
     * refused (but still counted); (2) wait for the count to reach zero, which needs both workers alive; (3) stop
     * the submit worker (empty: everything admitted has ended); (4) stop the completion worker, which first handles
     * whatever refused requests were added before it closed; a request refused after that is not counted and the
     * submitter gets IllegalStateException; (5) close the engine, which by then has nothing in flight.
     */

    private static final Logger LOG = LoggerFactory.getLogger(BackingDevice.class);

    /** How often a stop that waits for in-flight requests says so. */
    private static final long STOP_REPORT_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);

    /** Settings of a backing device. */
    public record Options(String threadNamePrefix) {

        /** Workers named {@code pcache-backing-submit} and {@code pcache-backing-complete}. */
        public static final Options DEFAULT = new Options("pcache-backing");

        public Options {
            if (threadNamePrefix == null || threadNamePrefix.isBlank()) {
                throw new IllegalArgumentException("threadNamePrefix must not be blank");
            }
        }
    }

    /** Lifecycle of a backing device; it only moves forward. */
    public enum State {
        /** Takes requests. */
        RUNNING,
        /** Refuses new requests (they complete with STOPPED) and waits for those in flight. */
        STOPPING,
        /** Workers joined and engine closed; submitting throws {@link IllegalStateException}. */
        STOPPED
    }

    private final IoEngine engine;
    private final DeviceGeometry geometry;
    private final InflightCounter inflight = new InflightCounter();
    private final BatchWorker<InflightRequest> submitWorker;
    private final BatchWorker<Runnable> completeWorker;
    private final Object stopLock = new Object();
    /** Written under stopLock. */
    private volatile State state = State.RUNNING;

    private BackingDevice(IoEngine engine, Options options) {
        this.engine = engine;
        this.geometry = new DeviceGeometry(engine.size(), engine.alignment());
        this.submitWorker = new BatchWorker<>(options.threadNamePrefix() + "-submit", this::dispatch);
        this.completeWorker = new BatchWorker<>(options.threadNamePrefix() + "-complete", Runnable::run);
    }

    /** Starts a backing device on {@code engine}, which it owns from now on and closes on {@link #stop}. */
    public static BackingDevice start(IoEngine engine) {
        return start(engine, Options.DEFAULT);
    }

    /** Starts a backing device on {@code engine}, which it owns from now on and closes on {@link #stop}. */
    public static BackingDevice start(IoEngine engine, Options options) {
        BackingDevice device = new BackingDevice(engine, options);
        device.completeWorker.start();
        device.submitWorker.start();
        LOG.info("backing device started engine={} size={} alignment={}", engine, device.size(), device.alignment());
        return device;
    }

    /** Size of the device in bytes. */
    public long size() {
        return geometry.size();
    }

    /** Offsets and lengths of requests must be multiples of this many bytes (1: no constraint). */
    public int alignment() {
        return geometry.alignment();
    }

    /** Whether a {@link BackingOp#DISCARD} reaches the device; when false it completes without effect. */
    public boolean supportsDiscard() {
        return engine.supportsDiscard();
    }

    /** Whether the device zeroes a {@link BackingOp#WRITE_ZEROES} range itself; when false zero blocks are written. */
    public boolean supportsWriteZeroes() {
        return engine.supportsWriteZeroes();
    }

    /**
     * The engine's allocation map of {@code [offset, offset + length)} (see {@link IoEngine#allocation}), asked of the
     * engine on the caller's thread; {@code done} runs on the engine's.
     */
    public void allocation(long offset, long length, IoEngine.AllocationCallback done) {
        engine.allocation(offset, length, done);
    }

    /** Whether the engine can reach its store now (see {@link IoEngine#connection()}). */
    public BackingConnection connection() {
        return engine.connection();
    }

    /** Where the device is in its lifecycle. */
    public State state() {
        return state;
    }

    /** Requests and flushes submitted and not yet completed (their completion callbacks included). */
    public long inflight() {
        return inflight.count();
    }

    /**
     * Queues {@code request} for the submit worker. Never blocks and never performs I/O; the status arrives
     * through the request's completion on the completion worker.
     *
     * @throws IllegalStateException if the device has stopped
     */
    public void submit(BackingRequest request) {
        InflightRequest admitted = admit(request);
        if (admitted != null) {
            boolean queued = submitWorker.add(admitted);
            assert queued : "submit worker stopped while a request was admitted: " + admitted;
        }
    }

    /**
     * Hands {@code request} to the engine on the caller's thread (engines do not wait for the I/O, but an engine
     * may copy memory on this thread). The status arrives through the request's completion on the completion
     * worker, as for {@link #submit}.
     *
     * @throws IllegalStateException if the device has stopped
     */
    public void submitDirect(BackingRequest request) {
        InflightRequest admitted = admit(request);
        if (admitted != null) {
            dispatch(admitted);
        }
    }

    /**
     * Hands {@code request} to the engine on the caller's thread, as {@link #submitDirect(BackingRequest)} does, and
     * runs its completion (then releases its upper request) on the thread the engine reports the status on: an
     * engine I/O thread, an NBD client's reply reader, or the caller's own for a request refused, invalid, or done by
     * an engine that completes at once. No completion-worker hand-over: one thread wake-up less per request, which is
     * what a read miss answering its reader needs. Only for a completion that takes no lock the caller may hold and
     * never blocks (it holds up the engine's thread while it runs). Never throws for a stopped device: the request
     * completes with {@link BackingIoException.Reason#STOPPED} instead.
     */
    public void submitInline(BackingRequest request) {
        InflightRequest admitted = admit(request, InflightRequest.Delivery.WHERE_REPORTED, null);
        if (admitted != null) {
            dispatch(admitted);
        }
    }

    /**
     * Hands every request of {@code requests} to the engine on the caller's thread, in order, as
     * {@link #submitDirect(BackingRequest)} does for one. The completions the engine reports while this call runs
     * reach the completion worker together when it returns, in one hand-over instead of one wake-up of the worker
     * per request (an engine that completes on the caller's thread reports all of them then); later ones go to the
     * worker at once, as for a single request. Each request's status still arrives through its own completion.
     *
     * @throws IllegalStateException if the device has stopped
     */
    public void submitDirect(List<? extends BackingRequest> requests) {
        CompletionPlug plug = new CompletionPlug(completeWorker);
        try {
            for (BackingRequest request : requests) {
                InflightRequest admitted = admit(request, InflightRequest.Delivery.COMPLETION_WORKER, plug);
                if (admitted != null) {
                    dispatch(admitted);
                }
            }
        } finally {
            plug.release();
        }
    }

    /**
     * Makes every write that completed before this call durable, data and the metadata needed to read it back
     * (fsync), and returns when it is. May be called from a completion callback.
     *
     * @throws BackingIoException with {@link BackingIoException.Reason#STOPPED} when the device is stopping or
     *                            stopped, or the engine's error
     */
    public void flush() throws BackingIoException {
        if (!inflight.enter()) {
            inflight.exit();
            throw stopped("flush", 0, size());
        }
        CompletableFuture<IOException> done = new CompletableFuture<>();
        try {
            // Woken straight from the engine's callback: no caller code runs there, and a flush from a completion
            // callback cannot wait for the completion worker it is running on.
            engineFlush(done::complete);
            IOException error = done.join();
            if (error != null) {
                throw asFlushError(error);
            }
        } finally {
            inflight.exit();
        }
    }

    /**
     * Like {@link #flush()}, without waiting: the future completes on the completion worker once every write that
     * completed before this call is durable, or fails with a {@link BackingIoException}.
     */
    public CompletableFuture<Void> flushAsync() {
        if (!inflight.enter()) {
            inflight.exit();
            return CompletableFuture.failedFuture(stopped("flush", 0, size()));
        }
        FlushCompletion completion = new FlushCompletion();
        engineFlush(completion);
        return completion.future;
    }

    /**
     * Reads {@code dst.byteSize()} bytes at {@code offset} into {@code dst} through {@link #submitDirect} and
     * returns when they are there.
     *
     * @throws BackingIoException            the request's error
     * @throws IllegalStateException         when called from a completion callback, or after stop
     */
    public void read(long offset, MemorySegment dst) throws BackingIoException {
        runAndWait(BackingOp.READ, dst, offset);
    }

    /**
     * Writes {@code src} at {@code offset} through {@link #submitDirect} and returns when the write completed
     * (not durable until a {@link #flush()}).
     *
     * @throws BackingIoException            the request's error
     * @throws IllegalStateException         when called from a completion callback, or after stop
     */
    public void write(long offset, MemorySegment src) throws BackingIoException {
        runAndWait(BackingOp.WRITE, src, offset);
    }

    /**
     * Refuses new requests, waits until every request taken before has completed, joins the workers and closes the
     * engine. Idempotent; a concurrent call returns once the device has stopped. Does not flush.
     *
     * @throws IllegalStateException when called from a completion callback
     */
    public void stop() {
        if (completeWorker.isWorkerThread()) {
            throw new IllegalStateException("stop() from a completion callback would wait for its own thread");
        }
        synchronized (stopLock) {
            if (state != State.RUNNING) {
                return;
            }
            inflight.close();
            state = State.STOPPING;
            LOG.info("backing device stopping engine={} inflight={}", engine, inflight.count());
            awaitInflightRequests();
            submitWorker.stop();
            completeWorker.stop();
            state = State.STOPPED;
            closeEngine();
            LOG.info("backing device stopped engine={}", engine);
        }
    }

    /** Same as {@link #stop}. */
    @Override
    public void close() {
        stop();
    }

    /** Waits for every counted request, without limit: one given up on could still have an engine use its memory. */
    private void awaitInflightRequests() {
        while (!inflight.awaitZeroAfterClose(STOP_REPORT_INTERVAL_NANOS)) {
            LOG.warn("backing device stop still waiting engine={} inflight={}", engine, inflight.count());
        }
    }

    /** Counts the request and checks it; null when it was refused or invalid and is already on its way to the
     *  completion worker. */
    private InflightRequest admit(BackingRequest request) {
        return admit(request, InflightRequest.Delivery.COMPLETION_WORKER, null);
    }

    /** Like {@link #admit(BackingRequest)}, with its completion delivered as {@code delivery}, for a request of a batch
     *  whose completions {@code plug} holds (null for a request submitted alone). A refused
     *  one bypasses the plug, so a refusal after the completion worker stopped still throws here; the plug holds only
     *  admitted requests, which stop waits for. */
    private InflightRequest admit(BackingRequest request, InflightRequest.Delivery delivery, CompletionPlug plug) {
        if (!inflight.enter()) {
            refuse(new InflightRequest(request, completeWorker, delivery, inflight));
            return null;
        }
        InflightRequest inflightRequest = new InflightRequest(request, completeWorker, delivery, plug, inflight);
        BackingIoException invalid = geometry.check(inflightRequest.operation(), request.backingOffset(),
                request.length());
        if (invalid != null) {
            inflightRequest.queueCompletion(invalid);
            return null;
        }
        return inflightRequest;
    }

    private void refuse(InflightRequest refused) {
        BackingRequest request = refused.request();
        BackingIoException error = stopped(refused.operation(), request.backingOffset(), request.length());
        if (!refused.queueCompletion(error)) {
            inflight.exit();
            throw new IllegalStateException("backing device is stopped; cannot take " + refused);
        }
    }

    private BackingIoException stopped(String operation, long offset, long length) {
        return new BackingIoException(BackingIoException.Reason.STOPPED, operation, offset, length,
                "backing device is stopping or stopped", null);
    }

    /** Hands one admitted request to the engine (the seed's submit_bio_noacct call). */
    private void dispatch(InflightRequest inflightRequest) {
        BackingRequest request = inflightRequest.request();
        try {
            switch (request) {
                case SliceRequest slice -> transfer(slice.op(), slice.backingOffset(), slice.memory(), inflightRequest);
                case MemoryRequest memory ->
                        transfer(memory.op(), memory.backingOffset(), memory.memory(), inflightRequest);
                case RangeRequest range -> {
                    switch (range.op()) {
                        case DISCARD -> engine.discard(range.backingOffset(), range.length(), inflightRequest);
                        case WRITE_ZEROES ->
                                engine.writeZeroes(range.backingOffset(), range.length(), inflightRequest);
                        case READ, WRITE -> throw new AssertionError("RangeRequest refuses " + range.op());
                    }
                }
            }
        } catch (RuntimeException e) {
            // Engines report failures through the callback; one that throws instead would strand the request.
            inflightRequest.completed(new BackingIoException(BackingIoException.Reason.IO_ERROR,
                    inflightRequest.operation(), request.backingOffset(), request.length(), "engine threw " + e, e));
        }
    }

    private void transfer(BackingOp op, long offset, MemorySegment memory, InflightRequest inflightRequest) {
        switch (op) {
            case READ -> engine.read(offset, memory, inflightRequest);
            case WRITE -> engine.write(offset, memory, inflightRequest);
            case DISCARD, WRITE_ZEROES -> throw new AssertionError(op + " carries no memory");
        }
    }

    private void engineFlush(IoEngine.IoCallback done) {
        try {
            engine.flush(done);
        } catch (RuntimeException e) {
            done.completed(new BackingIoException(BackingIoException.Reason.IO_ERROR, "flush", 0, size(),
                    "engine threw " + e, e));
        }
    }

    private BackingIoException asFlushError(IOException error) {
        if (error instanceof BackingIoException typed) {
            return typed;
        }
        return new BackingIoException(BackingIoException.Reason.IO_ERROR, "flush", 0, size(), error.getMessage(),
                error);
    }

    private void runAndWait(BackingOp op, MemorySegment memory, long offset) throws BackingIoException {
        if (completeWorker.isWorkerThread()) {
            throw new IllegalStateException("blocking " + op + " from a completion callback would wait for its own"
                    + " thread; submit a request instead");
        }
        CompletableFuture<BackingIoException> done = new CompletableFuture<>();
        submitDirect(new MemoryRequest(op, memory, offset, (request, error) -> done.complete(error)));
        BackingIoException error = done.join();
        if (error != null) {
            throw error;
        }
    }

    private void closeEngine() {
        try {
            engine.close();
        } catch (IOException e) {
            // Every request has completed; nothing is left to fail, so the stop boundary reports it.
            LOG.error("backing device engine={} failed to close", engine, e);
        }
    }

    /** Completes a {@link #flushAsync} future on the completion worker. */
    private final class FlushCompletion implements IoEngine.IoCallback, Runnable {

        final CompletableFuture<Void> future = new CompletableFuture<>();
        /** Written by the engine's callback before the hand-over through the completion list's lock. */
        private IOException error;

        @Override
        public void completed(IOException status) {
            this.error = status;
            boolean queued = completeWorker.add(this);
            assert queued : "completion worker stopped while a flush was in flight";
        }

        @Override
        public void run() {
            try {
                if (error == null) {
                    future.complete(null);
                } else {
                    future.completeExceptionally(asFlushError(error));
                }
            } finally {
                inflight.exit();
            }
        }
    }
}
