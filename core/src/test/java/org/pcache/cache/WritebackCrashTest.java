package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.CutEngine;
import org.pcache.backing.LossyEngine;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The backing device is lost power at every step of writeback (each write and each flush it sends). Whatever the
 * backing device kept must be the writes of a prefix of the log, plus possibly some writes of the one kset that was
 * in flight: writeback never lets a later kset reach the disk ahead of an earlier one (rule 4).
 *
 * <p>Every client write is followed by a flush, so each kset holds (a piece of) exactly one write and log order is
 * write order.
 */
class WritebackCrashTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final int WRITES = 24;

    private record Write(long off, int len, long id) {
    }

    static LongStream seeds() {
        return SoakSeeds.or(3, 5, 8);
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void backingAloneAlwaysHoldsAPrefixOfTheLog(long seed) throws Exception {
        List<Write> writes = workload(seed);
        long steps;
        try (PoweredDisk uncut = writebackSteps(writes, Long.MAX_VALUE)) {
            steps = uncut.engine().operations();
        }
        assertThat(steps).as("writeback steps").isGreaterThan(WRITES);
        for (long cut = 0; cut <= steps; cut++) {
            try (PoweredDisk disk = writebackSteps(writes, cut)) {
                disk.lossy().crash(seed * 7919 + cut);
                byte[] image = disk.lossy().durable(0, (int) BACKING_SIZE);
                assertPrefixOfLog(writes, image, "seed=" + seed + " power cut after " + cut + " backing operations");
            }
        }
    }

    /** The disk a run wrote back to: its memory, the lossy cache above it and the power cut above that. */
    private record PoweredDisk(MemoryEngine memory, LossyEngine lossy, CutEngine engine) implements AutoCloseable {
        @Override
        public void close() {
            memory.close(); // the disk's memory is native: give it back now, not when a GC happens to run
        }
    }

    /**
     * Writes the workload through a cache whose backing device loses power after {@code cut} writes and flushes,
     * drains, and stops once the drain completes or the cut happened.
     */
    private static PoweredDisk writebackSteps(List<Write> writes, long cut) throws Exception {
        MemoryEngine memory = new MemoryEngine(BACKING_SIZE);
        LossyEngine lossy = new LossyEngine(memory);
        CutEngine engine = new CutEngine(lossy, cut);
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-wb-", ".img");
        Files.delete(file);
        try (CacheHarness harness = CacheHarness.on(TestRegions.mapped(file, CacheHarness.CACHE_SIZE), engine,
                CacheHarness.quietOptions())) {
            for (Write write : writes) {
                harness.writePattern(write.off(), write.len(), write.id(), Durability.BUFFERED);
                CacheHarness.await(harness.cache.flushAsync());
            }
            CompletableFuture<Void> drained = harness.cache.drainAsync();
            CompletableFuture.anyOf(drained, engine.cut()).get(30, TimeUnit.SECONDS);
        } catch (Exception | Error e) {
            memory.close();
            throw e;
        } finally {
            Files.deleteIfExists(file);
        }
        return new PoweredDisk(memory, lossy, engine);
    }

    /** Some k: the disk equals writes 1..k applied in order, except sectors of write k+1 may hold write k+1. */
    private static void assertPrefixOfLog(List<Write> writes, byte[] disk, String where) {
        MemorySegment image = MemorySegment.ofArray(disk);
        long[] actual = new long[(int) (BACKING_SIZE / SECTOR)];
        for (int s = 0; s < actual.length; s++) {
            actual[s] = SectorPattern.idOf(image, (long) s * SECTOR, (long) s * SECTOR);
        }
        long[] prefix = new long[actual.length];
        for (int k = 0; k <= writes.size(); k++) {
            if (matches(prefix, actual, k < writes.size() ? writes.get(k) : null)) {
                return;
            }
            if (k < writes.size()) {
                Write write = writes.get(k);
                Arrays.fill(prefix, (int) (write.off() / SECTOR), (int) ((write.off() + write.len()) / SECTOR),
                        write.id());
            }
        }
        throw new AssertionError(where + ": the backing device holds no prefix of the log: "
                + Arrays.toString(Arrays.stream(actual).distinct().toArray()));
    }

    private static boolean matches(long[] prefix, long[] actual, Write inFlight) {
        for (int s = 0; s < actual.length; s++) {
            if (actual[s] == prefix[s]) {
                continue;
            }
            long off = (long) s * SECTOR;
            boolean partOfInFlight = inFlight != null && off >= inFlight.off() && off < inFlight.off() + inFlight.len()
                    && actual[s] == inFlight.id();
            if (!partOfInFlight) {
                return false;
            }
        }
        return true;
    }

    private static List<Write> workload(long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<Write> writes = new ArrayList<>();
        for (int i = 0; i < WRITES; i++) {
            int len = (1 + random.nextInt(64)) * SECTOR;
            long off = random.nextLong((BACKING_SIZE - len) / SECTOR) * SECTOR;
            writes.add(new Write(off, len, i + 1));
        }
        return writes;
    }
}
