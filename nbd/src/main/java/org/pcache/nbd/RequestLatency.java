package org.pcache.nbd;

import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Latency of one kind of NBD command: recorded on the request path into an HdrHistogram {@link Recorder}, read as a
 * count since start and p50, p99 and max over the last 30 to 60 s.
 *
 * <p>Recording is one {@link Recorder#recordValue} (wait-free, about 30-45 ns here); a Micrometer timer with
 * percentiles costs about 240 ns, since it records into three time-windowed histograms (docs/performance.md,
 * {@code PcacheExportBench}).
 *
 * <p>Threading: {@link #record} from any thread, never blocking; {@link #snapshot} from any thread, serialised on
 * this.
 */
public final class RequestLatency {

    /*
     * Implementation notes. A read moves the samples recorded since the previous read into the current slot, a
     * histogram covering SLOT_NANOS; percentiles and max cover the current and the previous slot. Whoever reads at
     * least every SLOT_NANOS (a Prometheus scrape, a watch on status) sees a window of 30 to 60 s. Samples recorded
     * while nobody read land in the slot of the next read: a first look after a long pause covers the whole pause.
     */

    /** Longest latency recorded as itself; longer ones count as this. */
    static final long HIGHEST_NANOS = TimeUnit.HOURS.toNanos(1);
    /** Length of a slot: the window is one to two of them. */
    static final long SLOT_NANOS = TimeUnit.SECONDS.toNanos(30);
    /** 1 % resolution: plenty for p50 and p99, and a small histogram. */
    private static final int SIGNIFICANT_DIGITS = 2;

    /**
     * What a read sees.
     *
     * @param count     samples since start
     * @param p50Nanos  median over the window, 0 when it holds no sample
     * @param p99Nanos  99th percentile over the window
     * @param maxNanos  largest over the window
     */
    public record Snapshot(long count, long p50Nanos, long p99Nanos, long maxNanos) {
    }

    private final Recorder recorder = new Recorder(HIGHEST_NANOS, SIGNIFICANT_DIGITS);
    private final LongSupplier nanoClock;
    // The reader side, guarded by this.
    private Histogram interval;
    private Histogram current = newHistogram();
    private Histogram previous = newHistogram();
    private final Histogram window = newHistogram();
    private long slotStart;
    private long count;

    RequestLatency(LongSupplier nanoClock) {
        this.nanoClock = nanoClock;
        this.slotStart = nanoClock.getAsLong();
    }

    /** One command took {@code nanos}. Any thread, never blocks. */
    void record(long nanos) {
        recorder.recordValue(Math.clamp(nanos, 0, HIGHEST_NANOS));
    }

    /** The count so far and the percentiles of the window, now. */
    public synchronized Snapshot snapshot() {
        rotate(nanoClock.getAsLong());
        interval = recorder.getIntervalHistogram(interval);
        current.add(interval);
        count += interval.getTotalCount();
        window.reset();
        window.add(previous);
        window.add(current);
        return new Snapshot(count, window.getValueAtPercentile(50), window.getValueAtPercentile(99),
                window.getMaxValue());
    }

    private void rotate(long now) {
        long slots = (now - slotStart) / SLOT_NANOS;
        if (slots == 0) {
            return;
        }
        Histogram older = previous;
        previous = current;
        current = older;
        current.reset();
        if (slots > 1) {
            previous.reset();
        }
        slotStart += slots * SLOT_NANOS;
    }

    private static Histogram newHistogram() {
        return new Histogram(HIGHEST_NANOS, SIGNIFICANT_DIGITS);
    }
}
