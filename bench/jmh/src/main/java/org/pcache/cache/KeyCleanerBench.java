package org.pcache.cache;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What freeing one segment costs the key cleaner, by the size of the index: {@link #extents} 4 KiB keys cover the
 * backing device, every 4 MiB stretch full (1024 keys), each key in a segment picked at random, 4096 keys (16 MiB) to a
 * segment, as random writes leave them. One operation frees one segment: its generation is bumped and
 * {@link KeyCleaner} removes its keys, on the calling thread. The keys of the segment freed are put back before each
 * operation, outside the measurement. {@link #freeSegment} is the range-by-range cleaning; {@link #sweepWholeIndex}
 * the sweep of every subtree it replaced, for comparison.
 *
 * <p>In package {@code org.pcache.cache} because the cleaner, the index and segments are package-private.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Fork(value = 1, jvmArgsAppend = {"-Xms4g", "-Xmx4g"})
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
public class KeyCleanerBench {

    private static final int EXTENT = 4096;
    private static final int KEYS_PER_SEGMENT = 4096;

    @Param({"1000000", "10000000"})
    public int extents;

    private KeyTree tree;
    private KeyCleaner cleaner;
    private CacheSegment[] segments;
    /** Per segment, its keys; those of a freed segment are placed again and put back, so refilling allocates nothing. */
    private CacheKey[][] keys;
    /** Per segment, its keys' (offset, length) pairs, as SegmentMap hands them to the cleaner. */
    private long[][] ranges;
    private int next;
    private CacheSegment freed;

    @Setup(Level.Trial)
    public void fill() {
        int segmentCount = extents / KEYS_PER_SEGMENT;
        tree = new KeyTree((long) segmentCount * KEYS_PER_SEGMENT * EXTENT);
        cleaner = new KeyCleaner(tree, Runnable::run);
        segments = new CacheSegment[segmentCount];
        keys = new CacheKey[segmentCount][KEYS_PER_SEGMENT];
        ranges = new long[segmentCount][2 * KEYS_PER_SEGMENT];
        int[] order = new int[segmentCount * KEYS_PER_SEGMENT];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        SplittableRandom random = new SplittableRandom(42);
        for (int i = order.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
        for (int s = 0; s < segmentCount; s++) {
            segments[s] = new CacheSegment(s, 0, 0);
            for (int k = 0; k < KEYS_PER_SEGMENT; k++) {
                long off = (long) order[s * KEYS_PER_SEGMENT + k] * EXTENT;
                keys[s][k] = new CacheKey(off, EXTENT, 0);
                ranges[s][2 * k] = off;
                ranges[s][2 * k + 1] = EXTENT;
                insert(segments[s], keys[s][k], k);
            }
        }
    }

    /** Puts back the keys of the segment the previous operation freed, and picks the next one. */
    @Setup(Level.Invocation)
    public void refill() {
        if (freed != null) {
            for (int k = 0; k < KEYS_PER_SEGMENT; k++) {
                insert(freed, keys[freed.id()][k], k);
            }
        }
        freed = segments[next];
        next = (next + 1) % segments.length;
    }

    @Benchmark
    public void freeSegment() {
        freed.bumpGen();
        cleaner.segmentFreed(ranges[freed.id()]);
    }

    @Benchmark
    public int sweepWholeIndex() {
        freed.bumpGen();
        int removed = 0;
        for (int i = 0; i < tree.subtreeCount(); i++) {
            KeySubtree subtree = tree.subtreeAt(i);
            synchronized (subtree) {
                removed += subtree.removeIf(0, Long.MAX_VALUE, CacheKey::isStale);
            }
        }
        return removed;
    }

    private void insert(CacheSegment segment, CacheKey key, int index) {
        key.place(segment, index * EXTENT, segment.gen());
        KeySubtree subtree = tree.subtree(key.off);
        synchronized (subtree) {
            subtree.insert(key);
        }
    }
}
