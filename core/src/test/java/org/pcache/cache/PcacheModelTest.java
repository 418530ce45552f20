package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Long seeded sequences of writes, FUA writes, write-zeroes, reads, flushes and reopens at random offsets and sizes,
 * crossing 4 MiB stretches and segment ends, checked sector by sector against a reference model. Each workload writes
 * four times the cache's capacity, so writeback and GC must keep up (at gc_percent 0, 70 and 90) without a deadlock;
 * at the end the cache is drained and the backing device alone must hold the model.
 */
class PcacheModelTest {

    private static final long BACKING_SIZE = 256L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final long VOLUME = 4 * CacheHarness.CACHE_SIZE;
    private static final int CHUNK = 4 << 20;

    /** A soak's seeds take gc_percent 0, 70 and 90 in turn. */
    private static final int[] SOAK_GC_PERCENTS = {0, 70, 90};

    static Stream<Arguments> workloads() {
        if (SoakSeeds.soaking()) {
            return SoakSeeds.soak().mapToObj(seed -> Arguments.of(seed, SOAK_GC_PERCENTS[(int) (seed % 3)]));
        }
        return Stream.of(Arguments.of(11L, 0), Arguments.of(23L, 70), Arguments.of(37L, 90), Arguments.of(41L, 70));
    }

    @ParameterizedTest(name = "seed={0} gc_percent={1}")
    @MethodSource("workloads")
    void workloadFourTimesTheCacheReadsBackLikeTheModel(long seed, int gcPercent) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        long[] model = new long[(int) (BACKING_SIZE / SECTOR)];
        long volume = 0;
        long nextId = 1;
        CacheOptions options = CacheHarness.quietOptions().withGcPercent(gcPercent);
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, options)) {
            for (int step = 0; volume < VOLUME; step++) {
                String where = "seed=" + seed + " gc_percent=" + gcPercent + " step=" + step;
                long off = randomOffset(random);
                int len = randomLength(random, off);
                int dice = random.nextInt(100);
                if (dice < 55) {
                    Durability durability = dice < 50 ? Durability.BUFFERED : Durability.FUA;
                    harness.writePattern(off, len, nextId, durability);
                    Arrays.fill(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR), nextId++);
                    volume += len;
                } else if (dice < 60) {
                    CacheHarness.await(harness.cache.writeZeroesAsync(off, len, Durability.BUFFERED));
                    Arrays.fill(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR), SectorPattern.ZERO);
                    volume += len;
                } else if (dice < 90) {
                    assertThat(harness.readIds(off, len)).as(where + " read " + off + "+" + len)
                            .containsExactly(slice(model, off, len));
                } else if (dice < 99) {
                    CacheHarness.await(harness.cache.flushAsync());
                } else {
                    harness.reopen();
                }
            }
            CacheHarness.await(harness.cache.drainAsync());
            assertThat(harness.cache.status().writeback().dirtyBytes()).isZero();
            for (long off = 0; off < BACKING_SIZE; off += CHUNK) {
                MemorySegment backing = MemorySegment.ofArray(new byte[CHUNK]);
                harness.backing.read(off, backing);
                assertThat(ids(backing, off)).as("seed=" + seed + " backing alone at " + off)
                        .containsExactly(slice(model, off, CHUNK));
                assertThat(harness.readIds(off, CHUNK)).as("seed=" + seed + " through the cache at " + off)
                        .containsExactly(slice(model, off, CHUNK));
            }
        }
    }

    private static long[] slice(long[] model, long off, int len) {
        return Arrays.copyOfRange(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR));
    }

    private static long[] ids(MemorySegment buf, long deviceOffset) {
        long[] ids = new long[(int) (buf.byteSize() / SECTOR)];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = SectorPattern.idOf(buf, (long) i * SECTOR, deviceOffset + (long) i * SECTOR);
        }
        return ids;
    }

    /** Mostly anywhere; sometimes just before a 4 MiB stretch boundary so the request crosses it. */
    private static long randomOffset(SplittableRandom random) {
        if (random.nextInt(4) == 0) {
            long stretch = random.nextLong(BACKING_SIZE >> KeyTree.SUBTREE_SHIFT);
            long back = (1 + random.nextInt(64)) * (long) SECTOR;
            return Math.max(0, ((stretch + 1) << KeyTree.SUBTREE_SHIFT) - back);
        }
        return random.nextLong(BACKING_SIZE / SECTOR) * SECTOR;
    }

    /** 512 B to 4 MiB, mostly small, clamped to the device end. */
    private static int randomLength(SplittableRandom random, long off) {
        int sectors = switch (random.nextInt(4)) {
            case 0 -> 1 + random.nextInt(8);
            case 1 -> 8 * (1 + random.nextInt(16));
            case 2 -> 1 + random.nextInt(1024);
            default -> 1 + random.nextInt(8192);
        };
        return (int) Math.min((long) sectors * SECTOR, BACKING_SIZE - off);
    }
}
