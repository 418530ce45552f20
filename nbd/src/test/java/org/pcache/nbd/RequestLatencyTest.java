package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The latency of a kind of NBD command: percentiles within 1 %, a window of one to two slots, a lasting count. */
class RequestLatencyTest {

    private static final long MICRO = TimeUnit.MICROSECONDS.toNanos(1);

    private long now = 1_000_000_000L;
    private final RequestLatency latency = new RequestLatency(() -> now);

    @Test
    void percentilesAndMaxOfTheSamplesWithinOnePercent() {
        for (int i = 1; i <= 1000; i++) {
            latency.record(i * MICRO);
        }
        RequestLatency.Snapshot snapshot = latency.snapshot();
        assertThat(snapshot.count()).isEqualTo(1000);
        assertThat((double) snapshot.p50Nanos()).isCloseTo(500 * MICRO, within(5.0 * MICRO));
        assertThat((double) snapshot.p99Nanos()).isCloseTo(990 * MICRO, within(10.0 * MICRO));
        assertThat((double) snapshot.maxNanos()).isCloseTo(1000 * MICRO, within(10.0 * MICRO));
    }

    @Test
    void samplesLeaveTheWindowAfterTwoSlotsButStayCounted() {
        latency.record(900 * MICRO);
        assertThat(latency.snapshot().maxNanos()).as("read in the first slot").isPositive();

        now += RequestLatency.SLOT_NANOS;
        latency.record(10 * MICRO);
        RequestLatency.Snapshot oneSlotLater = latency.snapshot();
        assertThat((double) oneSlotLater.maxNanos()).as("the previous slot is still in the window")
                .isCloseTo(900 * MICRO, within(9.0 * MICRO));

        now += RequestLatency.SLOT_NANOS;
        RequestLatency.Snapshot twoSlotsLater = latency.snapshot();
        assertThat((double) twoSlotsLater.maxNanos()).as("only the 10 µs sample is left")
                .isCloseTo(10 * MICRO, within(0.1 * MICRO));

        now += 5 * RequestLatency.SLOT_NANOS;
        RequestLatency.Snapshot idle = latency.snapshot();
        assertThat(idle.p50Nanos()).isZero();
        assertThat(idle.p99Nanos()).isZero();
        assertThat(idle.maxNanos()).isZero();
        assertThat(idle.count()).as("the count is since start").isEqualTo(2);
    }

    @Test
    void negativeAndHugeDurationsAreClampedNotRejected() {
        latency.record(-5);
        latency.record(Long.MAX_VALUE);
        RequestLatency.Snapshot snapshot = latency.snapshot();
        assertThat(snapshot.count()).isEqualTo(2);
        assertThat((double) snapshot.maxNanos()).isCloseTo(RequestLatency.HIGHEST_NANOS,
                within(RequestLatency.HIGHEST_NANOS * 0.01));
    }
}
