package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LatencyEngineTest {

    private static final int BLOCK = 512;

    @Test
    void aFixedDelayPostponesTheOperationOnTheSchedulerNotTheCaller() throws Exception {
        try (LatencyEngine engine = new LatencyEngine(new MemoryEngine(8 * BLOCK))
                .delay(EngineOp.WRITE, Duration.ofMillis(50))) {
            CompletableFuture<String> callbackThread = new CompletableFuture<>();
            long start = System.nanoTime();
            engine.write(0, MemorySegment.ofArray(new byte[BLOCK]),
                    error -> callbackThread.complete(Thread.currentThread().getName()));
            assertThat(callbackThread.get(10, TimeUnit.SECONDS)).isEqualTo(LatencyEngine.THREAD_NAME);
            assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(Duration.ofMillis(50).toNanos());
        }
    }

    @Test
    void aRandomDelayIsAtLeastItsMinimumAndOtherKindsAreNotDelayed() throws Exception {
        try (LatencyEngine engine = new LatencyEngine(new MemoryEngine(8 * BLOCK))
                .delayRandom(EngineOp.READ, Duration.ofMillis(20), Duration.ofMillis(40), 9)) {
            long start = System.nanoTime();
            BlockingIo.read(engine, 0, MemorySegment.ofArray(new byte[BLOCK]));
            assertThat(System.nanoTime() - start).isGreaterThanOrEqualTo(Duration.ofMillis(20).toNanos());

            CompletableFuture<Thread> flushThread = new CompletableFuture<>();
            engine.flush(error -> flushThread.complete(Thread.currentThread()));
            assertThat(flushThread).as("an undelayed flush passes straight through on the caller's thread")
                    .isCompletedWithValue(Thread.currentThread());
        }
    }
}
