package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.backing.CutEngine;
import org.pcache.backing.LossyEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.TestRegions;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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
 * The backing device loses power at every step of batched writeback (each write and each flush it sends), while
 * writeback takes several client writes, from two kset streams, per batch. Whatever the backing device kept must be the
 * state at some client flush k, except that any sector may already hold its value at flush k + 1 (the batch in flight,
 * collapsed: never a value between the two). Then the cache, opened again over what the backing device kept, writes
 * back everything: nothing acknowledged is lost, because dirty_tail never passed a batch before its flush.
 */
class WritebackBatchCrashTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final int WRITES = 12;
    private static final int WRITES_PER_FLUSH = 3;
    private static final int SECTORS = (int) (BACKING_SIZE / SECTOR);

    private record Write(long off, int len, long id) {
    }

    static LongStream seeds() {
        return SoakSeeds.or(11, 12, 13);
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void backingAloneHoldsAFlushStatePlusPartOfTheNextAndReplayLosesNothing(long seed) throws Exception {
        List<Write> writes = workload(seed);
        long[][] states = flushStates(writes);
        long steps = run(writes, Long.MAX_VALUE, seed, states);
        assertThat(steps).as("writeback steps").isGreaterThan(WRITES / WRITES_PER_FLUSH);
        for (long cut = 0; cut <= steps; cut++) {
            run(writes, cut, seed, states);
        }
    }

    /**
     * Writes the workload, flushing after every {@value #WRITES_PER_FLUSH} writes, through a cache whose backing device
     * loses power after {@code cut} writes and flushes; drains until the cut; checks what the backing device kept;
     * then opens the cache again over it and checks a drain brings it to the final state. Returns the backing
     * operations the run made before its check.
     */
    private static long run(List<Write> writes, long cut, long seed, long[][] states) throws Exception {
        String where = "seed=" + seed + " power cut after " + cut + " backing operations";
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-wbb-", ".img");
        Files.delete(file);
        try (MemoryEngine memory = new MemoryEngine(BACKING_SIZE)) {
            LossyEngine lossy = new LossyEngine(memory);
            CutEngine engine = new CutEngine(lossy, cut);
            CacheOptions options = CacheHarness.quietOptions();
            try (CacheHarness harness = CacheHarness.on(TestRegions.mapped(file, CacheHarness.CACHE_SIZE), engine,
                    options)) {
                for (int i = 0; i < writes.size(); i++) {
                    Write write = writes.get(i);
                    harness.writePattern(write.off(), write.len(), write.id(), Durability.BUFFERED);
                    if ((i + 1) % WRITES_PER_FLUSH == 0) {
                        CacheHarness.await(harness.cache.flushAsync());
                    }
                }
                CompletableFuture<Void> drained = harness.cache.drainAsync();
                CompletableFuture.anyOf(drained, engine.cut()).get(30, TimeUnit.SECONDS);
            }
            long operations = engine.operations();
            lossy.crash(seed * 7919 + cut);
            assertFlushStatePlusNext(states, ids(lossy.durable(0, (int) BACKING_SIZE)), where);

            try (CacheHarness again = CacheHarness.on(TestRegions.mapped(file, CacheHarness.CACHE_SIZE),
                    new LossyEngine(memory), options)) {
                again.cache.drain();
                assertThat(diskIds(memory)).as(where + ", then replayed and drained")
                        .isEqualTo(states[states.length - 1]);
            }
            return operations;
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** The write id of every sector at each client flush: states[0] before any, states[k] after flush k. */
    private static long[][] flushStates(List<Write> writes) {
        List<long[]> states = new ArrayList<>();
        long[] state = new long[SECTORS];
        states.add(state.clone());
        for (int i = 0; i < writes.size(); i++) {
            Write write = writes.get(i);
            Arrays.fill(state, (int) (write.off() / SECTOR), (int) ((write.off() + write.len()) / SECTOR), write.id());
            if ((i + 1) % WRITES_PER_FLUSH == 0) {
                states.add(state.clone());
            }
        }
        return states.toArray(long[][]::new);
    }

    private static void assertFlushStatePlusNext(long[][] states, long[] actual, String where) {
        for (int k = 0; k < states.length; k++) {
            long[] at = states[k];
            long[] next = states[Math.min(k + 1, states.length - 1)];
            boolean matches = true;
            for (int s = 0; s < SECTORS && matches; s++) {
                matches = actual[s] == at[s] || actual[s] == next[s];
            }
            if (matches) {
                return;
            }
        }
        throw new AssertionError(where + ": the backing device holds no flush state plus part of the next: "
                + Arrays.toString(Arrays.stream(actual).distinct().toArray()));
    }

    private static long[] ids(byte[] disk) {
        MemorySegment image = MemorySegment.ofArray(disk);
        long[] ids = new long[SECTORS];
        for (int s = 0; s < SECTORS; s++) {
            ids[s] = SectorPattern.idOf(image, (long) s * SECTOR, (long) s * SECTOR);
        }
        return ids;
    }

    private static long[] diskIds(MemoryEngine memory) {
        MemorySegment image = MemorySegment.ofArray(new byte[(int) BACKING_SIZE]);
        memory.read(0, image, error -> {
            if (error != null) {
                throw new AssertionError(error);
            }
        });
        return ids(image.toArray(ValueLayout.JAVA_BYTE));
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
