package org.pcache.backing;

import java.lang.foreign.MemorySegment;
import java.util.EnumMap;
import java.util.SplittableRandom;

/**
 * A filter that fails chosen operations with {@link BackingIoException.Reason#IO_ERROR} instead of passing them to
 * {@code next} (nbdkit's error filter): the Nth operation of a kind, or a seeded percentage of them. A failed
 * operation never reaches {@code next}, so the store below is untouched by it. Faults are armed and cleared at
 * run time ("the disk comes back"), and the filter counts what it saw and what it failed.
 *
 * <p>Threading: every method may be called from any thread. Decisions are taken in arrival order under one lock,
 * so a single-threaded sequence of operations fails the same way for the same seed.
 */
public final class FaultEngine extends FilterEngine {

    /** Which operations of one kind fail. */
    private sealed interface Rule permits Nth, Percent {
    }

    /** Fails the operation when {@code remaining} counts down to zero, then disarms. */
    private static final class Nth implements Rule {
        long remaining;

        Nth(long n) {
            remaining = n;
        }
    }

    private record Percent(double percent, SplittableRandom random) implements Rule {
    }

    private final Object lock = new Object();
    /** Armed rules by kind. Guarded by lock. */
    private final EnumMap<EngineOp, Rule> rules = new EnumMap<>(EngineOp.class);
    /** Operations seen and failed, by kind. Guarded by lock. */
    private final long[] seen = new long[EngineOp.values().length];
    private final long[] failed = new long[EngineOp.values().length];

    public FaultEngine(IoEngine next) {
        super(next);
    }

    /** Fails the {@code n}th operation of kind {@code op} from now on (1: the next one), once. */
    public FaultEngine failNth(EngineOp op, long n) {
        if (n < 1) {
            throw new IllegalArgumentException("n=" + n + " (expected: >= 1)");
        }
        synchronized (lock) {
            rules.put(op, new Nth(n));
        }
        return this;
    }

    /** Fails each later operation of kind {@code op} with probability {@code percent}/100, drawn from {@code seed}. */
    public FaultEngine failPercent(EngineOp op, double percent, long seed) {
        if (!(percent >= 0 && percent <= 100)) {
            throw new IllegalArgumentException("percent=" + percent + " (expected: 0..100)");
        }
        synchronized (lock) {
            rules.put(op, new Percent(percent, new SplittableRandom(seed)));
        }
        return this;
    }

    /** Fails every later operation of kind {@code op}: the device is gone. */
    public FaultEngine failAll(EngineOp op) {
        return failPercent(op, 100, 0);
    }

    /** Disarms the fault on kind {@code op}. */
    public void clear(EngineOp op) {
        synchronized (lock) {
            rules.remove(op);
        }
    }

    /** Disarms every fault: later operations all reach {@code next}. */
    public void clear() {
        synchronized (lock) {
            rules.clear();
        }
    }

    /** Operations of kind {@code op} failed so far. */
    public long failed(EngineOp op) {
        synchronized (lock) {
            return failed[op.ordinal()];
        }
    }

    /** Operations of kind {@code op} received so far, failed or not. */
    public long seen(EngineOp op) {
        synchronized (lock) {
            return seen[op.ordinal()];
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        BackingIoException fault = decide(EngineOp.READ, offset, dst.byteSize());
        if (fault != null) {
            done.completed(fault);
        } else {
            next.read(offset, dst, done);
        }
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        BackingIoException fault = decide(EngineOp.WRITE, offset, src.byteSize());
        if (fault != null) {
            done.completed(fault);
        } else {
            next.write(offset, src, done);
        }
    }

    @Override
    public void flush(IoCallback done) {
        BackingIoException fault = decide(EngineOp.FLUSH, 0, next.size());
        if (fault != null) {
            done.completed(fault);
        } else {
            next.flush(done);
        }
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        BackingIoException fault = decide(EngineOp.DISCARD, offset, length);
        if (fault != null) {
            done.completed(fault);
        } else {
            next.discard(offset, length, done);
        }
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        BackingIoException fault = decide(EngineOp.WRITE_ZEROES, offset, length);
        if (fault != null) {
            done.completed(fault);
        } else {
            next.writeZeroes(offset, length, done);
        }
    }

    /** The injected error for this operation, or null to pass it on. */
    private BackingIoException decide(EngineOp op, long offset, long length) {
        long number;
        synchronized (lock) {
            number = ++seen[op.ordinal()];
            if (!shouldFail(op)) {
                return null;
            }
            failed[op.ordinal()]++;
        }
        return new BackingIoException(BackingIoException.Reason.IO_ERROR, op.name().toLowerCase().replace('_', '-'),
                offset, length, "injected fault on " + op + " #" + number, null);
    }

    /** Guarded by lock. */
    private boolean shouldFail(EngineOp op) {
        return switch (rules.get(op)) {
            case null -> false;
            case Nth nth -> {
                if (--nth.remaining > 0) {
                    yield false;
                }
                rules.remove(op);
                yield true;
            }
            case Percent percent -> percent.random().nextDouble() * 100 < percent.percent();
        };
    }
}
