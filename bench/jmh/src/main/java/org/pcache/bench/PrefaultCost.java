package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import org.pcache.pmem.MappedPmemRegion;

/**
 * What pre-faulting costs at open and what it saves later. For a region of N GiB on tmpfs it times
 * {@link MappedPmemRegion#open(Path, long, long)} pre-faulting all of it, of a fresh sparse file and again of the now
 * allocated file, and then the first and the second sweep of 4 KiB stores over a fresh region opened without
 * pre-faulting (the first-touch faults a cache's first pass through its segments pays).
 *
 * <p>Usage: {@code bench/jmh/run --main org.pcache.bench.PrefaultCost [GiB]} (default 2).
 */
public final class PrefaultCost {

    private PrefaultCost() {
    }

    public static void main(String[] args) throws IOException {
        long gib = args.length > 0 ? Long.parseLong(args[0]) : 2;
        long size = gib << 30;
        Path file = BenchDirs.unusedFile(BenchDirs.shm(), "pcache-bench-prefault-");
        try {
            long sparse = timeOpen(file, size, Long.MAX_VALUE);
            long allocated = timeOpen(file, size, Long.MAX_VALUE);
            Files.delete(file);
            long none = timeOpen(file, size, 0);
            long[] sweeps = sweeps(file, size);
            System.out.printf("prefault per GiB: sparse file %.0f ms, allocated file %.0f ms; open without: %.0f ms "
                            + "per GiB%n4 KiB stores over the fresh region: first sweep %.0f ns, second %.0f ns per "
                            + "page%n", sparse / 1e6 / gib, allocated / 1e6 / gib, none / 1e6 / gib,
                    (double) sweeps[0] / (size / 4096), (double) sweeps[1] / (size / 4096));
        } finally {
            Files.deleteIfExists(file);
        }
    }

    private static long timeOpen(Path file, long size, long prefault) throws IOException {
        long start = System.nanoTime();
        try (MappedPmemRegion region = MappedPmemRegion.open(file, size, prefault)) {
            return System.nanoTime() - start;
        }
    }

    /** Nanoseconds of two sweeps of 4 KiB stores over {@code file}, a region not yet pre-faulted. */
    private static long[] sweeps(Path file, long size) throws IOException {
        MemorySegment block = Arena.ofAuto().allocate(4096);
        block.fill((byte) 1);
        long[] times = new long[2];
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
             Arena arena = Arena.ofConfined()) {
            MemorySegment mapping = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
            for (int sweep = 0; sweep < 2; sweep++) {
                long start = System.nanoTime();
                for (long at = 0; at < size; at += 4096) {
                    MemorySegment.copy(block, 0, mapping, at, 4096);
                }
                times[sweep] = System.nanoTime() - start;
            }
        }
        return times;
    }
}
