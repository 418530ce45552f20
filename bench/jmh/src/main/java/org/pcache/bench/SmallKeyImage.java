package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;

import org.pcache.cache.CacheOptions;
import org.pcache.cache.Durability;

/**
 * A cache image holding {@code keys} extents of 512 bytes that never overlap, one every 4 KiB of the backing device,
 * written in random order: after replay the index holds exactly {@code keys} extents, about a thousand per 4 MiB
 * subtree, inserted out of order as a real log would insert them. The backing device is a {@link DiscardEngine} of
 * {@link #backingSize(int)} bytes, so no memory backs it.
 */
final class SmallKeyImage {

    static final int KEY_BYTES = 512;
    static final int KEY_SPACING = 4096;

    private SmallKeyImage() {
    }

    /** Backing device size for {@code keys} extents: one per 4 KiB, rounded up to whole 4 MiB subtrees. */
    static long backingSize(int keys) {
        long bytes = (long) keys * KEY_SPACING;
        long subtree = 4L << 20;
        return (bytes + subtree - 1) / subtree * subtree;
    }

    /** Writes the image into a new region file {@code regionFile} of {@code regionBytes}; returns the file. */
    static Path build(Path regionFile, long regionBytes, int keys, CacheOptions options, long seed)
            throws IOException {
        int[] order = shuffled(keys, seed);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(KEY_BYTES, KEY_BYTES);
            data.fill((byte) 0x3C);
            BenchCache bench = BenchCache.open(regionFile, regionBytes, new DiscardEngine(backingSize(keys)), options);
            try {
                for (int slot : order) {
                    bench.cache.write((long) slot * KEY_SPACING, data, Durability.BUFFERED);
                }
                bench.cache.flush();
            } finally {
                bench.cache.close();
                bench.cache = null;
                bench.backing.stop();
                bench.region.close();
            }
        }
        return regionFile;
    }

    private static int[] shuffled(int n, long seed) {
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        SplittableRandom random = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int swap = order[i];
            order[i] = order[j];
            order[j] = swap;
        }
        return order;
    }
}
