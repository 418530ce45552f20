package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.SplittableRandom;

import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Durability;

/**
 * A cache image full of dirty data that nothing has written back: the workload's writes went into a cache in front
 * of a {@link WriteFailingEngine}, so dirty_tail never moved. Opening a copy of it in front of a real backing device
 * gives writeback a known backlog from its first step.
 */
final class DirtyImage {

    /** What was written: {@code chunk}-byte writes at {@code offsets}, in that order. */
    record Workload(int chunk, long[] offsets) {

        long bytes() {
            return (long) chunk * offsets.length;
        }

        /**
         * {@code pattern} "seq1m": 1 MiB writes from offset 0 upwards; "rand4k": 4 KiB writes at distinct random
         * 4 KiB blocks of the first {@code deviceBytes} (so nothing is overwritten and every byte is written back).
         */
        static Workload of(String pattern, long totalBytes, long deviceBytes, long seed) {
            return switch (pattern) {
                case "seq1m" -> sequential(1 << 20, totalBytes);
                case "rand4k" -> random(4096, totalBytes, deviceBytes, seed);
                default -> throw new IllegalArgumentException("pattern=" + pattern + " (expected: seq1m or rand4k)");
            };
        }

        private static Workload sequential(int chunk, long totalBytes) {
            long[] offsets = new long[Math.toIntExact(totalBytes / chunk)];
            for (int i = 0; i < offsets.length; i++) {
                offsets[i] = (long) i * chunk;
            }
            return new Workload(chunk, offsets);
        }

        private static Workload random(int chunk, long totalBytes, long deviceBytes, long seed) {
            int blocks = Math.toIntExact(deviceBytes / chunk);
            int[] order = new int[blocks];
            for (int i = 0; i < blocks; i++) {
                order[i] = i;
            }
            SplittableRandom random = new SplittableRandom(seed);
            long[] offsets = new long[Math.toIntExact(totalBytes / chunk)];
            for (int i = 0; i < offsets.length; i++) {
                int j = i + random.nextInt(blocks - i);
                int swap = order[i];
                order[i] = order[j];
                order[j] = swap;
                offsets[i] = (long) order[i] * chunk;
            }
            return new Workload(chunk, offsets);
        }
    }

    private DirtyImage() {
    }

    /** Writes {@code workload} into a new region file and closes it with all of it dirty. */
    static void build(Path regionFile, long regionBytes, long deviceBytes, Workload workload, CacheOptions options)
            throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(workload.chunk(), 4096);
            byte[] random = new byte[workload.chunk()];
            new SplittableRandom(1).nextBytes(random);
            MemorySegment.copy(MemorySegment.ofArray(random), 0, data, 0, random.length);
            BenchCache bench = BenchCache.open(regionFile, regionBytes, new WriteFailingEngine(deviceBytes), options);
            try {
                for (long offset : workload.offsets()) {
                    bench.cache.write(offset, data, Durability.BUFFERED);
                }
                bench.cache.flush();
                CacheStatus status = bench.cache.status();
                if (status.writeback().dirtyBytes() != workload.bytes()) {
                    throw new IllegalStateException("image holds " + status.writeback().dirtyBytes()
                            + " dirty bytes, expected " + workload.bytes() + ": " + status.statusLine());
                }
            } finally {
                bench.cache.close();
                bench.cache = null;
                bench.backing.stop();
                bench.region.close();
            }
        }
    }
}
