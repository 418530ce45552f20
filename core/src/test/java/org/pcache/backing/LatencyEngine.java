package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.EnumMap;
import java.util.SplittableRandom;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * A filter that delays each operation before passing it to {@code next} (nbdkit's delay filter), by a fixed or a
 * seeded random time per kind, without blocking the caller: delayed operations start on this filter's scheduler
 * thread ({@code pcache-test-latency}), which therefore acts as the I/O thread for a synchronous {@code next}.
 * Random delays reorder operations, as a real device may.
 *
 * <p>Threading: every method may be called from any thread. {@link #close} stops the scheduler (running what is
 * already scheduled) and then closes {@code next}.
 */
public final class LatencyEngine extends FilterEngine {

    /** Name of the scheduler thread. */
    public static final String THREAD_NAME = "pcache-test-latency";

    /** Delay of one kind: {@code minNanos} plus a random part below {@code spreadNanos}. */
    private record Delay(long minNanos, long spreadNanos, SplittableRandom random) {
    }

    private final ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1,
            Thread.ofPlatform().name(THREAD_NAME).daemon(true).factory());
    /** Delays by kind; absent means none. Guarded by itself (the random state moves on every draw). */
    private final EnumMap<EngineOp, Delay> delays = new EnumMap<>(EngineOp.class);

    public LatencyEngine(IoEngine next) {
        super(next);
    }

    /** Delays every later operation of kind {@code op} by {@code delay}. */
    public LatencyEngine delay(EngineOp op, Duration delay) {
        return delayRandom(op, delay, delay, 0);
    }

    /** Delays every later operation of kind {@code op} by a time drawn uniformly from {@code [min, max]}. */
    public LatencyEngine delayRandom(EngineOp op, Duration min, Duration max, long seed) {
        if (min.isNegative() || max.compareTo(min) < 0) {
            throw new IllegalArgumentException("delay range [" + min + ", " + max + "] (expected: 0 <= min <= max)");
        }
        synchronized (delays) {
            delays.put(op, new Delay(min.toNanos(), max.toNanos() - min.toNanos() + 1, new SplittableRandom(seed)));
        }
        return this;
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        after(EngineOp.READ, () -> next.read(offset, dst, done));
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        after(EngineOp.WRITE, () -> next.write(offset, src, done));
    }

    @Override
    public void flush(IoCallback done) {
        after(EngineOp.FLUSH, () -> next.flush(done));
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        after(EngineOp.DISCARD, () -> next.discard(offset, length, done));
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        after(EngineOp.WRITE_ZEROES, () -> next.writeZeroes(offset, length, done));
    }

    @Override
    public void close() throws IOException {
        scheduler.close();
        next.close();
    }

    private void after(EngineOp op, Runnable operation) {
        long nanos = drawNanos(op);
        if (nanos == 0) {
            operation.run();
        } else {
            scheduler.schedule(operation, nanos, TimeUnit.NANOSECONDS);
        }
    }

    private long drawNanos(EngineOp op) {
        synchronized (delays) {
            Delay delay = delays.get(op);
            if (delay == null) {
                return 0;
            }
            return delay.minNanos() + delay.random().nextLong(delay.spreadNanos());
        }
    }
}
