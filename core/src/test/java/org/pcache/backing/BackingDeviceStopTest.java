package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BackingDeviceStopTest {

    private static final int BLOCK = 512;
    private static final long WAIT_SECONDS = 10;

    @Test
    void stopWaitsForEveryRequestInFlightAndCompletesEachOnce() throws Exception {
        int requests = 40;
        GateEngine gate = new GateEngine(new MemoryEngine(requests * BLOCK), requests);
        BackingDevice device = BackingDevice.start(gate);
        AtomicIntegerArray completions = new AtomicIntegerArray(requests);
        Queue<BackingIoException> errors = new ConcurrentLinkedQueue<>();
        for (int i = 0; i < requests; i++) {
            int id = i;
            MemoryRequest request = new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[BLOCK]),
                    (long) i * BLOCK, (r, error) -> {
                        if (error != null) {
                            errors.add(error);
                        }
                        completions.incrementAndGet(id);
                    });
            if (i % 2 == 0) {
                device.submit(request);
            } else {
                device.submitDirect(request);
            }
        }
        assertThat(gate.awaitHeld(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();

        CompletableFuture<Void> stopped = CompletableFuture.runAsync(device::stop);
        awaitState(device, BackingDevice.State.STOPPING);
        assertThat(stopped).as("stop waits while requests are held at the engine").isNotDone();
        gate.open();

        stopped.get(WAIT_SECONDS, TimeUnit.SECONDS);
        assertThat(device.state()).isEqualTo(BackingDevice.State.STOPPED);
        assertThat(errors).as("requests taken before stop run normally").isEmpty();
        for (int i = 0; i < requests; i++) {
            assertThat(completions.get(i)).as("completions of request %d", i).isEqualTo(1);
        }
        assertThat(gate.closes()).as("engine closed once, after the last request").isEqualTo(1);
    }

    @Test
    void requestsSubmittedWhileStoppingCompleteWithStopped() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(8 * BLOCK), 1);
        BackingDevice device = BackingDevice.start(gate);
        device.submit(write(0, BackingCompletion.NONE));
        assertThat(gate.awaitHeld(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        CompletableFuture<Void> stopped = CompletableFuture.runAsync(device::stop);
        awaitState(device, BackingDevice.State.STOPPING);

        CompletableFuture<BackingIoException> queued = new CompletableFuture<>();
        CompletableFuture<BackingIoException> direct = new CompletableFuture<>();
        CompletableFuture<Throwable> upperError = new CompletableFuture<>();
        UpperRequest watched = new UpperRequest(BLOCK, MemorySegment.ofArray(new byte[BLOCK]),
                upperError::complete);
        device.submit(write(BLOCK, (r, error) -> queued.complete(error)));
        device.submitDirect(write(2 * BLOCK, (r, error) -> direct.complete(error)));
        device.submit(new SliceRequest(BackingOp.WRITE, watched, 0, BLOCK, BackingCompletion.NONE));
        watched.release(null);

        assertThat(queued.get(WAIT_SECONDS, TimeUnit.SECONDS).reason()).isEqualTo(BackingIoException.Reason.STOPPED);
        assertThat(direct.get(WAIT_SECONDS, TimeUnit.SECONDS).reason()).isEqualTo(BackingIoException.Reason.STOPPED);
        assertThat(upperError.get(WAIT_SECONDS, TimeUnit.SECONDS)).isInstanceOfSatisfying(BackingIoException.class,
                error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.STOPPED));
        assertThatThrownBy(() -> device.flushAsync().get(WAIT_SECONDS, TimeUnit.SECONDS))
                .isInstanceOf(ExecutionException.class).hasCauseInstanceOf(BackingIoException.class);
        assertThatThrownBy(device::flush).isInstanceOfSatisfying(BackingIoException.class,
                error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.STOPPED));
        assertThat(gate.held()).as("refused requests never reach the engine").isEqualTo(1);

        gate.open();
        stopped.get(WAIT_SECONDS, TimeUnit.SECONDS);
    }

    @Test
    void submittingAfterStopThrowsIllegalState() throws Exception {
        BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK));
        device.stop();
        assertThatThrownBy(() -> device.submit(write(0, BackingCompletion.NONE)))
                .isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> device.submitDirect(write(0, BackingCompletion.NONE)))
                .isInstanceOf(IllegalStateException.class);
        assertThat(device.inflight()).isZero();
    }

    @Test
    void stopIsIdempotentAndClosesTheEngineOnce() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(8 * BLOCK), 0);
        gate.open();
        BackingDevice device = BackingDevice.start(gate);
        CompletableFuture<Void> first = CompletableFuture.runAsync(device::stop);
        CompletableFuture<Void> second = CompletableFuture.runAsync(device::stop);
        first.get(WAIT_SECONDS, TimeUnit.SECONDS);
        second.get(WAIT_SECONDS, TimeUnit.SECONDS);
        device.close();
        assertThat(device.state()).isEqualTo(BackingDevice.State.STOPPED);
        assertThat(gate.closes()).isEqualTo(1);
    }

    @Test
    void stopFromACompletionCallbackIsRefusedInsteadOfDeadlocking() throws Exception {
        AtomicReference<Throwable> thrown = new AtomicReference<>();
        CountDownLatch done = new CountDownLatch(1);
        try (BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK))) {
            device.submit(write(0, (request, error) -> {
                try {
                    device.stop();
                } catch (Throwable t) {
                    thrown.set(t);
                }
                done.countDown();
            }));
            assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(device.state()).isEqualTo(BackingDevice.State.RUNNING);
        }
        assertThat(thrown.get()).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void stopJoinsTheWorkerThreads() throws Exception {
        BackingDevice device = BackingDevice.start(new MemoryEngine(8 * BLOCK),
                new BackingDevice.Options("stop-join-test"));
        device.write(0, MemorySegment.ofArray(new byte[BLOCK]));
        assertThat(threadsNamed("stop-join-test-")).hasSize(2);
        device.stop();
        assertThat(threadsNamed("stop-join-test-")).isEmpty();
    }

    private static List<String> threadsNamed(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().map(Thread::getName).filter(n -> n.startsWith(prefix))
                .toList();
    }

    private static MemoryRequest write(long offset, BackingCompletion completion) {
        return new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[BLOCK]), offset, completion);
    }

    /** Waits, bounded, for the device's own state signal; stop() gives no other observable step to wait on. */
    private static void awaitState(BackingDevice device, BackingDevice.State expected) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (device.state() != expected) {
            assertThat(System.nanoTime()).as("device reaches %s", expected).isLessThan(deadline);
            Thread.onSpinWait();
        }
    }
}
