package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.RegionFailedException;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The worker skeleton writeback and GC share: its states, and how a failure stops it for good and fails the cache. */
class CacheWorkerTest {

    private static final long IDLE_NANOS = TimeUnit.HOURS.toNanos(1);

    /** Runs {@code steps} until one says there is nothing more, then throws {@code failure} at the next kick. */
    private static final class ScriptedWorker extends CacheWorker {
        final AtomicInteger steps = new AtomicInteger();
        final CompletableFuture<Integer> idle = new CompletableFuture<>();
        final CompletableFuture<Void> throwing = new CompletableFuture<>();
        final CompletableFuture<Void> cacheFailed = new CompletableFuture<>();
        final FailStopRegion failStop;
        private final int busySteps;
        private final Exception failure;

        ScriptedWorker(int busySteps, Exception failure) {
            this(busySteps, failure, new FailStopRegion(TestRegions.crashSim(PmemRegion.LINE_SIZE)));
        }

        private ScriptedWorker(int busySteps, Exception failure, FailStopRegion failStop) {
            super("pcache-test-worker", failStop, IDLE_NANOS);
            this.failStop = failStop;
            this.busySteps = busySteps;
            this.failure = failure;
        }

        @Override
        boolean step() throws CorruptMediaException {
            int step = steps.incrementAndGet();
            if (step <= busySteps) {
                return true;
            }
            if (idle.complete(step) || failure == null) {
                return false;
            }
            throwing.complete(null);
            switch (failure) {
                case CorruptMediaException e -> throw e;
                case RuntimeException e -> throw e;
                default -> throw new AssertionError(failure);
            }
        }

        @Override
        void cacheFailed() {
            cacheFailed.complete(null);
        }
    }

    @Test
    void aWorkerRunsStepsWhileTheyFindWorkThenWaitsForAKickAndStopsWhenAsked() throws InterruptedException {
        ScriptedWorker worker = new ScriptedWorker(3, null);
        assertThat(worker.state()).isEqualTo(WorkerState.RUNNING);
        worker.start();
        assertThat(worker.idle.join()).as("the step that found nothing").isEqualTo(4);
        assertThat(worker.stop(soon())).as("the worker ended").isTrue();
        assertThat(worker.state()).isEqualTo(WorkerState.STOPPED);
        assertThat(worker.state().toString()).isEqualTo("stopped");
        assertThat(worker.failure()).isNull();
    }

    @Test
    void corruptMediaStopsTheWorkerForGoodWithItsMessageAndFailsTheCache() throws InterruptedException {
        CorruptMediaException corrupt = new CorruptMediaException("kset at 3:4096", 3, 4096, "magic", "0x1", "0x2");
        ScriptedWorker worker = new ScriptedWorker(0, corrupt);
        worker.start();
        worker.idle.join();
        worker.kick();
        worker.throwing.join();
        worker.kick();
        assertThat(worker.stop(soon())).as("the worker ended").isTrue();
        assertThat(worker.cacheFailed).as("told once the cache failed").isDone();
        assertThat(worker.failStop.health().cause()).isEqualTo("pcache-test-worker stopped for good on corrupt media: "
                + corrupt.getMessage());
        assertThat(worker.state().phase()).isEqualTo(WorkerState.Phase.FAILED);
        assertThat(worker.state().cause()).isEqualTo(corrupt.getMessage());
        assertThat(worker.state().toString()).isEqualTo("failed: " + corrupt.getMessage());
        assertThat(worker.failure()).isEqualTo(corrupt.getMessage());
        assertThat(worker.steps.get()).as("no step after the failure, kicked or not").isEqualTo(2);
    }

    @Test
    void anUnexpectedErrorStopsTheWorkerForGoodAndFailsTheCacheInsteadOfDyingSilently() throws InterruptedException {
        ScriptedWorker worker = new ScriptedWorker(0, new IllegalStateException("bug"));
        worker.start();
        worker.idle.join();
        worker.kick();
        worker.throwing.join();
        assertThat(worker.stop(soon())).as("the worker ended").isTrue();
        assertThat(worker.cacheFailed).isDone();
        assertThat(worker.state()).isEqualTo(WorkerState.failed("java.lang.IllegalStateException: bug"));
        assertThat(worker.failStop.health())
                .isEqualTo(CacheHealth.failed("pcache-test-worker stopped by an unexpected error: bug"));
        assertThatThrownBy(() -> worker.failStop.flush(0, 8)).as("nothing more is written")
                .isInstanceOf(RegionFailedException.class);
    }

    @Test
    void aWorkerStopsOnceTheCacheFailedElsewhere() throws InterruptedException {
        ScriptedWorker worker = new ScriptedWorker(0, null);
        worker.start();
        worker.idle.join();
        worker.failStop.fail("an msync", new IllegalStateException("EIO"));
        worker.kick();
        worker.cacheFailed.join();
        assertThat(worker.state()).as("the cache failed, not the worker").isEqualTo(WorkerState.STOPPED);
        assertThat(worker.stop(soon())).as("the worker ended").isTrue();
    }

    @Test
    void aCauseGoesWithFailedAndOnlyWithIt() throws InterruptedException {
        assertThat(WorkerState.RUNNING.toString()).isEqualTo("running");
        assertThat(WorkerState.failed("EIO").failed()).isTrue();
        assertThat(WorkerState.STOPPED.failed()).isFalse();
        assertThatThrownBy(() -> new WorkerState(WorkerState.Phase.FAILED, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new WorkerState(WorkerState.Phase.RUNNING, "why"))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aStopWhoseDeadlinePassesInAStepAbandonsTheWorkerWhichEndsAfterThatStep() throws InterruptedException {
        CompletableFuture<Void> inStep = new CompletableFuture<>();
        CompletableFuture<Void> release = new CompletableFuture<>();
        CacheWorker worker = new CacheWorker("pcache-test-stuck", new FailStopRegion(
                TestRegions.crashSim(PmemRegion.LINE_SIZE)), IDLE_NANOS) {
            @Override
            boolean step() {
                inStep.complete(null);
                release.join();
                return false;
            }
        };
        worker.start();
        inStep.join();
        long started = System.nanoTime();

        assertThat(worker.stop(started + TimeUnit.MILLISECONDS.toNanos(100))).as("ended by the deadline").isFalse();

        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started)).as("stop waited").isLessThan(5_000);
        assertThat(worker.abandoned()).isTrue();
        release.complete(null);
        assertThat(worker.stop(soon())).as("ended after its step").isTrue();
    }

    private static long soon() {
        return System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    }
}
