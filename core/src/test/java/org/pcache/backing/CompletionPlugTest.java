package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class CompletionPlugTest {

    private static final long WAIT_SECONDS = 10;

    private final Queue<String> handled = new ConcurrentLinkedQueue<>();
    private final Queue<String> threads = new ConcurrentLinkedQueue<>();

    private BatchWorker<Runnable> worker(String name) {
        BatchWorker<Runnable> worker = new BatchWorker<>(name, Runnable::run);
        worker.start();
        return worker;
    }

    private Runnable item(String id, CountDownLatch done) {
        return () -> {
            handled.add(id);
            threads.add(Thread.currentThread().getName());
            done.countDown();
        };
    }

    @Test
    void heldCompletionsReachTheWorkerOnlyAtReleaseInTheOrderHeld() throws Exception {
        BatchWorker<Runnable> worker = worker("plug-test-complete");
        try {
            CompletionPlug plug = new CompletionPlug(worker);
            CountDownLatch heldDone = new CountDownLatch(3);
            assertThat(plug.hold(item("a", heldDone))).isTrue();
            assertThat(plug.hold(item("b", heldDone))).isTrue();
            CountDownLatch directDone = new CountDownLatch(1);
            assertThat(worker.add(item("direct", directDone))).isTrue();
            assertThat(directDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(handled).as("the worker ran, but not the held items").containsExactly("direct");

            assertThat(plug.hold(item("c", heldDone))).isTrue();
            plug.release();

            assertThat(heldDone.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
            assertThat(handled).containsExactly("direct", "a", "b", "c");
            assertThat(threads).containsOnly("plug-test-complete");
        } finally {
            worker.stop();
        }
    }

    @Test
    void aReleasedPlugRefusesSoCompletionsGoToTheWorkerDirectly() {
        BatchWorker<Runnable> worker = worker("plug-test-released");
        try {
            CompletionPlug plug = new CompletionPlug(worker);
            plug.release();
            assertThat(plug.hold(item("late", new CountDownLatch(1)))).isFalse();
        } finally {
            worker.stop();
        }
        assertThat(handled).isEmpty();
    }

    @Test
    void addAllHandsOverEveryItemInOrderAndRefusesOnceStopping() throws Exception {
        BatchWorker<Runnable> worker = worker("plug-test-addall");
        CountDownLatch done = new CountDownLatch(3);
        assertThat(worker.addAll(List.of(item("x", done), item("y", done), item("z", done)))).isTrue();
        assertThat(worker.addAll(List.of())).isTrue();
        assertThat(done.await(WAIT_SECONDS, TimeUnit.SECONDS)).isTrue();
        worker.stop();
        assertThat(worker.addAll(List.of(item("after stop", new CountDownLatch(1))))).isFalse();
        assertThat(handled).containsExactly("x", "y", "z");
    }
}
