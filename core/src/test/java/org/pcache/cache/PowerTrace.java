package org.pcache.cache;

import java.util.EnumMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The one clock of a cache region ({@link TracedRegion}) and its backing disk ({@link TracedDisk}) under a power-cut
 * run: every persistence-relevant operation of either, and every acknowledgement the test records, happens under
 * {@link #lock} and takes the next event number, so the run is one total order however many threads drive it. Before
 * (and, for barriers, after) each operation the clock may cut the power: it hands the moment to a {@link Cut}, which
 * builds the images a power failure there could leave and checks them while every other thread that wants to touch
 * persistent state waits on the lock. The run then goes on as if nothing happened.
 *
 * <p>Which events become cuts is decided by a seeded random draw per event with a probability per {@link Kind}, so a
 * run's cuts land on a mix of moments: rare, important barriers (a segment's new generation, dirty_tail, key_tail,
 * gc_percent) often, plain data stores rarely.
 *
 * <p>Threading: every method must be called with {@link #lock} held, except {@link #arm} and {@link #cuts}.
 */
final class PowerTrace {

    /** What an event is, as far as choosing cut points goes. */
    enum Kind {
        /** A store to a data or kset log segment's data area. */
        DATA_STORE,
        /** A region flush. */
        FLUSH,
        /** A drain that makes only data or kset log lines durable. */
        DRAIN,
        /** A drain that makes a segment's generation (GC reclaiming it, before its reuse) durable. */
        GEN_DRAIN,
        /** A drain that makes dirty_tail (writeback progress) durable. */
        DIRTY_TAIL_DRAIN,
        /** A drain that makes key_tail (GC progress) durable. */
        KEY_TAIL_DRAIN,
        /** A drain that makes cache_info (a gc_percent change) durable. */
        CACHE_INFO_DRAIN,
        /** A write (or write-zeroes) completing on the backing disk. */
        DISK_WRITE,
        /** A flush of the backing disk. */
        DISK_FLUSH
    }

    /** Checks one power cut; runs with {@link #lock} held, on whichever thread reached the cut point. */
    @FunctionalInterface
    interface Cut {
        void at(long event, Kind kind, boolean after, SplittableRandom random);
    }

    final ReentrantLock lock = new ReentrantLock();
    private final SplittableRandom random;
    private final Map<Kind, Double> chance;
    private final Cut cut;
    private final Map<Kind, Integer> cutsByKind = new EnumMap<>(Kind.class);
    private volatile boolean armed;
    private long event;
    private int cuts;
    private final int maxCuts;

    PowerTrace(long seed, Map<Kind, Double> chance, int maxCuts, Cut cut) {
        this.random = new SplittableRandom(seed);
        this.chance = chance;
        this.maxCuts = maxCuts;
        this.cut = cut;
    }

    /** Starts or stops choosing cut points (the events still count). */
    void arm(boolean on) {
        armed = on;
    }

    /** The next event number: the position of what the caller does now in the run's total order. */
    long tick() {
        return ++event;
    }

    /** An event of {@code kind} is about to happen (or, {@code after}, has just happened): maybe cut here. */
    void at(Kind kind, boolean after) {
        long now = tick();
        if (!armed || cuts >= maxCuts || random.nextDouble() >= chance.getOrDefault(kind, 0.0)) {
            return;
        }
        cuts++;
        cutsByKind.merge(kind, 1, Integer::sum);
        cut.at(now, kind, after, random.split());
    }

    /** Cuts taken so far, by kind of event. */
    Map<Kind, Integer> cuts() {
        lock.lock();
        try {
            return new EnumMap<>(cutsByKind);
        } finally {
            lock.unlock();
        }
    }

    int cutCount() {
        return cuts;
    }
}
