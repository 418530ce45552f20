package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.ReentrantLock;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BackingDeviceTest {

    private static final int BLOCK = 512;
    private static final long WAIT_SECONDS = 10;
    private static final String COMPLETE_THREAD = "pcache-backing-complete";

    @Test
    void manyThreadsSubmittingQueuedAndDirectRequestsCompleteEachExactlyOnce() throws Exception {
        int threads = 8;
        int uppersPerThread = 150;
        long seed = 0x5eed_0001L;
        LatencyEngine engine = new LatencyEngine(new MemoryEngine((long) threads * uppersPerThread * 2 * BLOCK))
                .delayRandom(EngineOp.WRITE, Duration.ZERO, Duration.ofNanos(200_000), seed);
        int slices = threads * uppersPerThread * 2;
        AtomicIntegerArray sliceCompletions = new AtomicIntegerArray(slices);
        AtomicIntegerArray upperCompletions = new AtomicIntegerArray(threads * uppersPerThread);
        Queue<Throwable> errors = new ConcurrentLinkedQueue<>();
        CountDownLatch uppersDone = new CountDownLatch(threads * uppersPerThread);
        try (BackingDevice device = BackingDevice.start(engine);
             ExecutorService submitters = Executors.newFixedThreadPool(threads)) {
            List<Future<?>> submitted = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int thread = t;
                submitted.add(submitters.submit(() -> {
                    for (int i = 0; i < uppersPerThread; i++) {
                        int upperId = thread * uppersPerThread + i;
                        MemorySegment data = MemorySegment.ofArray(new byte[2 * BLOCK]);
                        data.fill((byte) upperId);
                        UpperRequest upper = new UpperRequest((long) upperId * 2 * BLOCK, data, error -> {
                            if (error != null) {
                                errors.add(error);
                            }
                            upperCompletions.incrementAndGet(upperId);
                            uppersDone.countDown();
                        });
                        for (int half = 0; half < 2; half++) {
                            int sliceId = upperId * 2 + half;
                            SliceRequest slice = new SliceRequest(BackingOp.WRITE, upper, (long) half * BLOCK, BLOCK,
                                    (request, error) -> sliceCompletions.incrementAndGet(sliceId));
                            if (half == 0) {
                                device.submit(slice);
                            } else {
                                device.submitDirect(slice);
                            }
                        }
                        upper.release(null);
                    }
                    return null;
                }));
            }
            for (Future<?> future : submitted) {
                future.get(WAIT_SECONDS, TimeUnit.SECONDS);
            }
            assertThat(uppersDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).as("all upper requests completed").isTrue();
            assertThat(errors).isEmpty();
            for (int i = 0; i < slices; i++) {
                assertThat(sliceCompletions.get(i)).as("completions of slice %d (seed %x)", i, seed).isEqualTo(1);
            }
            for (int i = 0; i < upperCompletions.length(); i++) {
                assertThat(upperCompletions.get(i)).as("completions of upper %d", i).isEqualTo(1);
            }
            MemorySegment readBack = MemorySegment.ofArray(new byte[2 * BLOCK]);
            for (int upperId = 0; upperId < upperCompletions.length(); upperId++) {
                device.read((long) upperId * 2 * BLOCK, readBack);
                assertThat(readBack.toArray(ValueLayout.JAVA_BYTE)).as("data of upper %d", upperId)
                        .containsOnly((byte) upperId);
            }
        }
    }

    @Test
    void completionsRunOnTheCompletionWorkerNotOnTheEngineThread() throws Exception {
        LatencyEngine engine = new LatencyEngine(new MemoryEngine(64 * BLOCK))
                .delay(EngineOp.READ, Duration.ofMillis(1))
                .delay(EngineOp.WRITE, Duration.ofMillis(1));
        Queue<String> completionThreads = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(4);
        try (BackingDevice device = BackingDevice.start(engine)) {
            BackingCompletion record = (request, error) -> {
                completionThreads.add(Thread.currentThread().getName());
                done.countDown();
            };
            device.submit(memoryRequest(BackingOp.WRITE, 0, record));
            device.submitDirect(memoryRequest(BackingOp.WRITE, BLOCK, record));
            device.submit(memoryRequest(BackingOp.READ, 0, record));
            device.submitDirect(memoryRequest(BackingOp.READ, BLOCK, record));
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        }
        // The latency filter calls back on its scheduler thread: the engine's I/O thread here.
        assertThat(completionThreads).hasSize(4).containsOnly(COMPLETE_THREAD)
                .doesNotContain(LatencyEngine.THREAD_NAME);
    }

    @Test
    void anInlineRequestCompletesOnTheEngineThreadWhileTheCompletionWorkerIsHeld() throws Exception {
        LatencyEngine engine = new LatencyEngine(new MemoryEngine(64 * BLOCK))
                .delay(EngineOp.READ, Duration.ofMillis(1));
        CountDownLatch workerHeld = new CountDownLatch(1);
        CountDownLatch releaseWorker = new CountDownLatch(1);
        CompletableFuture<String> inlineThread = new CompletableFuture<>();
        AtomicReference<String> engineCalledOn = new AtomicReference<>();
        FilterEngine recording = new FilterEngine(engine) {
            @Override
            public void read(long offset, MemorySegment dst, IoCallback done) {
                engineCalledOn.compareAndSet(null, Thread.currentThread().getName());
                super.read(offset, dst, done);
            }
        };
        try (BackingDevice device = BackingDevice.start(recording)) {
            device.submit(memoryRequest(BackingOp.READ, 0, (request, error) -> {
                workerHeld.countDown();
                try {
                    releaseWorker.await(WAIT_SECONDS, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
            try {
                assertThat(workerHeld.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
                engineCalledOn.set(null);
                device.submitInline(memoryRequest(BackingOp.READ, BLOCK,
                        (request, error) -> inlineThread.complete(Thread.currentThread().getName())));
                assertThat(inlineThread.get(WAIT_SECONDS, TimeUnit.SECONDS)).as("while the worker is held")
                        .isEqualTo(LatencyEngine.THREAD_NAME);
                assertThat(engineCalledOn.get()).as("handed to the engine on the submitter's thread")
                        .isEqualTo(Thread.currentThread().getName());
            } finally {
                releaseWorker.countDown();
            }
        }
    }

    @Test
    void anInlineRequestToAStoppedDeviceCompletesWithStoppedInsteadOfThrowing() throws Exception {
        BackingDevice device = BackingDevice.start(new MemoryEngine(64 * BLOCK));
        device.stop();
        AtomicReference<BackingIoException> status = new AtomicReference<>();
        device.submitInline(memoryRequest(BackingOp.READ, 0, (request, error) -> status.set(error)));
        assertThat(status.get()).as("completed before submitInline returned").isNotNull();
        assertThat(status.get().reason()).isEqualTo(BackingIoException.Reason.STOPPED);
        assertThat(device.inflight()).isZero();
    }

    @Test
    void completionsNeverRunOnTheSubmitterOrUnderItsLock() throws Exception {
        // MemoryEngine calls back on the caller's thread: the worst case for running callbacks inline.
        ReentrantLock submitterLock = new ReentrantLock();
        Queue<String> violations = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(40);
        Thread submitter = Thread.currentThread();
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(64 * BLOCK))) {
            BackingCompletion check = (request, error) -> {
                if (Thread.currentThread() == submitter) {
                    violations.add("completion on the submitter's thread");
                }
                if (submitterLock.isHeldByCurrentThread()) {
                    violations.add("completion under the submitter's lock");
                }
                done.countDown();
            };
            submitterLock.lock();
            try {
                for (int i = 0; i < 20; i++) {
                    device.submit(memoryRequest(BackingOp.WRITE, (long) i * BLOCK, check));
                    device.submitDirect(memoryRequest(BackingOp.READ, (long) i * BLOCK, check));
                }
            } finally {
                submitterLock.unlock();
            }
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(violations).isEmpty();
    }

    @Test
    void sliceErrorReachesTheUpperRequestOnceAfterItsLastSliceWithTheFirstError() throws Exception {
        // Reads 2 and 3 fail; slices are submitted directly from one thread, so they complete in order.
        FaultEngine faults = new FaultEngine(new MemoryEngine(16 * BLOCK)).failNth(EngineOp.READ, 2);
        AtomicInteger slicesEnded = new AtomicInteger();
        List<Integer> slicesEndedWhenUpperCompleted = new ArrayList<>();
        List<Throwable> upperErrors = new ArrayList<>();
        CountDownLatch upperDone = new CountDownLatch(1);
        try (BackingDevice device = BackingDevice.start(faults)) {
            UpperRequest upper = new UpperRequest(4 * BLOCK, MemorySegment.ofArray(new byte[4 * BLOCK]), error -> {
                slicesEndedWhenUpperCompleted.add(slicesEnded.get());
                upperErrors.add(error);
                upperDone.countDown();
            });
            for (int i = 0; i < 4; i++) {
                if (i == 2) {
                    faults.failNth(EngineOp.READ, 1);
                }
                device.submitDirect(new SliceRequest(BackingOp.READ, upper, (long) i * BLOCK, BLOCK,
                        (request, error) -> slicesEnded.incrementAndGet()));
            }
            upper.release(null);
            assertThat(upperDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(slicesEndedWhenUpperCompleted).containsExactly(4);
        assertThat(upperErrors).hasSize(1);
        assertThat(upperErrors.getFirst()).isInstanceOfSatisfying(BackingIoException.class, error -> {
            assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR);
            assertThat(error.offset()).as("the first failing slice's backing offset").isEqualTo(5 * BLOCK);
        });
        assertThat(faults.failed(EngineOp.READ)).isEqualTo(2);
    }

    @Test
    void rangesPastTheDeviceEndFailWithOutOfRangeThroughTheCompletion() throws Exception {
        MemoryEngine engine = new MemoryEngine(8 * BLOCK);
        try (BackingDevice device = BackingDevice.start(engine)) {
            assertThat(failure(device, memoryRequest(BackingOp.READ, 8 * BLOCK, null)).reason())
                    .isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
            assertThat(failure(device, memoryRequest(BackingOp.WRITE, 7 * BLOCK + 1, null)).reason())
                    .isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
            UpperRequest negative = new UpperRequest(-BLOCK, MemorySegment.ofArray(new byte[BLOCK]), error -> { });
            BackingIoException error = failure(device, new SliceRequest(BackingOp.READ, negative, 0, BLOCK, null));
            assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
            assertThat(error.offset()).isEqualTo(-BLOCK);
            assertThat(failure(device, memoryRequest(BackingOp.WRITE, 7 * BLOCK, null))).isNull();
        }
    }

    @Test
    void rangesBreakingTheEngineAlignmentFailWithMisaligned() throws Exception {
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(64 * BLOCK, 4096))) {
            assertThat(device.alignment()).isEqualTo(4096);
            assertThat(failure(device, memoryRequest(BackingOp.WRITE, BLOCK, null)).reason())
                    .isEqualTo(BackingIoException.Reason.MISALIGNED);
            MemoryRequest shortWrite = new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[4096 - BLOCK]),
                    0, null);
            assertThat(failure(device, shortWrite).reason()).isEqualTo(BackingIoException.Reason.MISALIGNED);
            MemoryRequest aligned = new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[4096]), 4096,
                    null);
            assertThat(failure(device, aligned)).isNull();
        }
    }

    @Test
    void aThrowingCompletionIsLoggedAndLaterRequestsStillComplete() throws Exception {
        CountDownLatch upperDone = new CountDownLatch(1);
        CountDownLatch laterDone = new CountDownLatch(1);
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK))) {
            UpperRequest upper = new UpperRequest(0, MemorySegment.ofArray(new byte[BLOCK]),
                    e -> upperDone.countDown());
            device.submit(new SliceRequest(BackingOp.WRITE, upper, 0, BLOCK, (request, error) -> {
                throw new IllegalStateException("completion bug, on purpose");
            }));
            upper.release(null);
            device.submit(memoryRequest(BackingOp.WRITE, BLOCK, (request, error) -> laterDone.countDown()));
            assertThat(upperDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).as("upper released despite the throw").isTrue();
            assertThat(laterDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).as("worker still running").isTrue();
        }
    }

    @Test
    void anEngineThatThrowsFailsTheRequestWithIoError() throws Exception {
        try (BackingDevice device = BackingDevice.start(new ThrowingReads(new MemoryEngine(8 * BLOCK)))) {
            BackingIoException error = failure(device, memoryRequest(BackingOp.READ, 0, null));
            assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR);
            assertThat(error).hasCauseInstanceOf(UnsupportedOperationException.class);
        }
    }

    @Test
    void aBatchCompletesEachRequestOnceOnTheCompletionWorkerInSubmissionOrderWhenTheEngineIsInline()
            throws Exception {
        int count = 200;
        Queue<Long> order = new ConcurrentLinkedQueue<>();
        Queue<String> completionThreads = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(count);
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(count * BLOCK))) {
            BackingCompletion record = (request, error) -> {
                assertThat(error).isNull();
                order.add(request.backingOffset());
                completionThreads.add(Thread.currentThread().getName());
                done.countDown();
            };
            List<MemoryRequest> batch = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                batch.add(memoryRequest(BackingOp.WRITE, (long) i * BLOCK, record));
            }
            device.submitDirect(batch);
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            // A request leaves the in-flight count just after its completion callback returns.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            while (device.inflight() != 0 && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertThat(device.inflight()).isZero();
        }
        assertThat(new ArrayList<>(order)).hasSize(count).isSorted();
        assertThat(completionThreads).containsOnly(COMPLETE_THREAD);
    }

    @Test
    void aBatchWithDelayedAndInvalidRequestsDeliversEveryStatusExactlyOnce() throws Exception {
        int count = 300;
        long seed = 0x5eed_0002L;
        LatencyEngine engine = new LatencyEngine(new MemoryEngine((count + 1) * BLOCK))
                .delayRandom(EngineOp.WRITE, Duration.ZERO, Duration.ofNanos(100_000), seed);
        AtomicIntegerArray completions = new AtomicIntegerArray(count + 1);
        Queue<String> completionThreads = new ConcurrentLinkedQueue<>();
        Queue<String> wrongStatus = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(count + 1);
        try (BackingDevice device = BackingDevice.start(engine)) {
            List<MemoryRequest> batch = new ArrayList<>();
            for (int i = 0; i <= count; i++) {
                int id = i;
                boolean pastTheEnd = i == count / 2;
                long offset = pastTheEnd ? (long) (count + 1) * BLOCK : (long) i * BLOCK;
                batch.add(new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[BLOCK]), offset,
                        (request, error) -> {
                            boolean expectedError = pastTheEnd;
                            if ((error != null) != expectedError || pastTheEnd
                                    && error.reason() != BackingIoException.Reason.OUT_OF_RANGE) {
                                wrongStatus.add("request " + id + ": " + error);
                            }
                            completions.incrementAndGet(id);
                            completionThreads.add(Thread.currentThread().getName());
                            done.countDown();
                        }));
            }
            device.submitDirect(batch);
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).as("seed=%x", seed).isTrue();
            device.stop();
            assertThat(device.inflight()).isZero();
        }
        assertThat(wrongStatus).as("seed=%x", seed).isEmpty();
        for (int i = 0; i <= count; i++) {
            assertThat(completions.get(i)).as("completions of request %d, seed=%x", i, seed).isEqualTo(1);
        }
        assertThat(completionThreads).containsOnly(COMPLETE_THREAD);
    }

    @Test
    void aBatchHoldsItsCompletionsUntilEveryRequestWasHandedToTheEngine() throws Exception {
        CountDownLatch firstCompleted = new CountDownLatch(1);
        SecondWriteLooksBack engine = new SecondWriteLooksBack(new MemoryEngine(2 * BLOCK), firstCompleted);
        CountDownLatch done = new CountDownLatch(2);
        try (BackingDevice device = BackingDevice.start(engine)) {
            BackingCompletion first = (request, error) -> {
                firstCompleted.countDown();
                done.countDown();
            };
            BackingCompletion second = (request, error) -> done.countDown();
            device.submitDirect(List.of(memoryRequest(BackingOp.WRITE, 0, first),
                    memoryRequest(BackingOp.WRITE, BLOCK, second)));
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(engine.sawFirstCompletion).as("the first completion ran while the batch was being submitted")
                .isFalse();
    }

    @Test
    void aBatchSubmittedAfterStopIsRefused() {
        BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK));
        device.stop();
        assertThatThrownBy(() -> device.submitDirect(List.of(memoryRequest(BackingOp.WRITE, 0, null))))
                .isInstanceOf(IllegalStateException.class);
        assertThat(device.inflight()).isZero();
    }

    @Test
    void inflightCountsRequestsFromSubmissionToTheEndOfTheirCompletion() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(8 * BLOCK), 3);
        BackingDevice device = BackingDevice.start(gate);
        Queue<Long> seenInCompletion = new ConcurrentLinkedQueue<>();
        BackingCompletion record = (request, error) -> seenInCompletion.add(device.inflight());
        device.submit(memoryRequest(BackingOp.WRITE, 0, record));
        device.submitDirect(memoryRequest(BackingOp.WRITE, BLOCK, record));
        CompletableFuture<Void> flushed = device.flushAsync();
        assertThat(gate.awaitHeld(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        assertThat(device.inflight()).isEqualTo(3);
        gate.open();
        flushed.get(WAIT_SECONDS, TimeUnit.SECONDS);
        device.stop();
        assertThat(seenInCompletion).hasSize(2).allSatisfy(count -> assertThat(count).isPositive());
        assertThat(device.inflight()).isZero();
    }

    @Test
    void flushAsyncCompletesOnTheCompletionWorkerNotOnTheEngineThread() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(8 * BLOCK), 1);
        try (BackingDevice device = BackingDevice.start(gate)) {
            CompletableFuture<String> thread = device.flushAsync()
                    .thenApply(ignored -> Thread.currentThread().getName());
            assertThat(gate.awaitHeld(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            gate.open(); // the held flush calls back on this thread
            assertThat(thread.get(WAIT_SECONDS, TimeUnit.SECONDS)).isEqualTo(COMPLETE_THREAD);
        }
    }

    @Test
    void flushFromACompletionCallbackDoesNotDeadlock() throws Exception {
        // Writeback flushes the backing device from the completion of its last write.
        CompletableFuture<BackingIoException> flushed = new CompletableFuture<>();
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK))) {
            device.submit(memoryRequest(BackingOp.WRITE, 0, (request, error) -> {
                try {
                    device.flush();
                    flushed.complete(null);
                } catch (BackingIoException e) {
                    flushed.complete(e);
                }
            }));
            assertThat(flushed.get(WAIT_SECONDS, TimeUnit.SECONDS)).isNull();
        }
    }

    @Test
    void flushErrorsReachTheCaller() throws Exception {
        FaultEngine faults = new FaultEngine(new MemoryEngine(8 * BLOCK)).failAll(EngineOp.FLUSH);
        try (BackingDevice device = BackingDevice.start(faults)) {
            assertThatThrownBy(device::flush).isInstanceOfSatisfying(BackingIoException.class,
                    error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR));
            assertThatThrownBy(() -> device.flushAsync().get(WAIT_SECONDS, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class).hasCauseInstanceOf(BackingIoException.class);
            faults.clear();
            device.flush();
        }
    }

    @Test
    void blockingIoFromACompletionCallbackIsRefusedInsteadOfDeadlocking() throws Exception {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK))) {
            device.submit(memoryRequest(BackingOp.WRITE, 0, (request, error) -> {
                try {
                    device.read(0, MemorySegment.ofArray(new byte[BLOCK]));
                } catch (Throwable t) {
                    thrown.set(t);
                }
                done.countDown();
            }));
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(thrown.get()).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void writesAndReadsFromNativeAndHeapMemoryRoundTrip() throws Exception {
        SplittableRandom random = new SplittableRandom(42);
        byte[] expected = new byte[4 * BLOCK];
        random.nextBytes(expected);
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(16 * BLOCK));
             Arena arena = Arena.ofShared()) {
            MemorySegment nativeSource = arena.allocate(expected.length);
            nativeSource.copyFrom(MemorySegment.ofArray(expected));
            device.write(2 * BLOCK, nativeSource);
            byte[] heapTarget = new byte[expected.length];
            device.read(2 * BLOCK, MemorySegment.ofArray(heapTarget));
            assertThat(heapTarget).isEqualTo(expected);
        }
    }

    @Test
    void discardAndWriteZeroesRequestsReachTheEngineAndCompleteOnTheCompletionWorker() throws Exception {
        MemoryEngine memory = new MemoryEngine(8 * BLOCK);
        FaultEngine counting = new FaultEngine(memory);
        try (BackingDevice device = BackingDevice.start(counting)) {
            device.write(0, MemorySegment.ofArray(new byte[8 * BLOCK]).fill((byte) 9));
            CompletableFuture<String> discarded = new CompletableFuture<>();
            device.submit(new RangeRequest(BackingOp.DISCARD, BLOCK, BLOCK,
                    (request, error) -> discarded.complete(error == null ? Thread.currentThread().getName()
                            : error.toString())));
            assertThat(discarded.get(WAIT_SECONDS, TimeUnit.SECONDS)).isEqualTo(COMPLETE_THREAD);
            CountDownLatch zeroed = new CountDownLatch(2);
            device.submitDirect(List.of(
                    new RangeRequest(BackingOp.WRITE_ZEROES, 4 * BLOCK, BLOCK, (request, error) -> zeroed.countDown()),
                    new RangeRequest(BackingOp.WRITE_ZEROES, 6 * BLOCK, 2 * BLOCK,
                            (request, error) -> zeroed.countDown())));
            assertThat(zeroed.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(failure(device, new RangeRequest(BackingOp.DISCARD, 7 * BLOCK, 2 * BLOCK,
                    BackingCompletion.NONE)).reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
            byte[] back = new byte[8 * BLOCK];
            device.read(0, MemorySegment.ofArray(back));
            for (int block = 0; block < 8; block++) {
                boolean zero = block == 1 || block == 4 || block >= 6;
                assertThat(Arrays.copyOfRange(back, block * BLOCK, (block + 1) * BLOCK)).as("block %d", block)
                        .containsOnly((byte) (zero ? 0 : 9));
            }
            assertThat(counting.seen(EngineOp.DISCARD)).as("the out-of-range discard never reached it").isEqualTo(1);
            assertThat(counting.seen(EngineOp.WRITE_ZEROES)).isEqualTo(2);
            assertThat(device.supportsDiscard()).isTrue();
            assertThat(device.supportsWriteZeroes()).isTrue();
        }
    }

    private static MemoryRequest memoryRequest(BackingOp op, long offset, BackingCompletion completion) {
        return new MemoryRequest(op, MemorySegment.ofArray(new byte[BLOCK]), offset,
                completion == null ? BackingCompletion.NONE : completion);
    }

    /** Submits {@code request} (its own completion is replaced) and returns its error, or null on success. */
    private static BackingIoException failure(BackingDevice device, BackingRequest request) throws Exception {
        CompletableFuture<BackingIoException> status = new CompletableFuture<>();
        BackingCompletion capture = (r, error) -> status.complete(error);
        BackingRequest captured = switch (request) {
            case MemoryRequest m -> new MemoryRequest(m.op(), m.memory(), m.backingOffset(), capture);
            case SliceRequest s -> new SliceRequest(s.op(), s.upper(), s.offset(), s.length(), capture);
            case RangeRequest r -> new RangeRequest(r.op(), r.backingOffset(), r.length(), capture);
        };
        if (request instanceof SliceRequest s) {
            s.upper().release(null); // the reference the uncaptured copy took; it is never submitted
        }
        device.submit(captured);
        return status.get(WAIT_SECONDS, TimeUnit.SECONDS);
    }

    /** An engine that breaks the contract by throwing from read. */
    private static final class ThrowingReads extends FilterEngine {

        ThrowingReads(IoEngine next) {
            super(next);
        }

        @Override
        public void read(long offset, MemorySegment dst, IoCallback done) {
            throw new UnsupportedOperationException("read on purpose");
        }
    }

    /**
     * A filter whose write at offset {@code BLOCK} first waits a little for the completion of an earlier
     * request (of the same batch) to run, and records whether it did.
     */
    private static final class SecondWriteLooksBack extends FilterEngine {
        private static final long LOOK_MILLIS = 200;
        private final CountDownLatch firstCompleted;
        private volatile boolean sawFirstCompletion;

        SecondWriteLooksBack(IoEngine next, CountDownLatch firstCompleted) {
            super(next);
            this.firstCompleted = firstCompleted;
        }

        @Override
        public void write(long offset, MemorySegment src, IoCallback done) {
            if (offset == BLOCK) {
                try {
                    sawFirstCompletion = firstCompleted.await(LOOK_MILLIS, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            next.write(offset, src, done);
        }
    }
}
