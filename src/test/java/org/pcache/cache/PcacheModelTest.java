package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Long seeded sequences of writes, FUA writes, write-zeroes, reads, flushes and reopens at random offsets and sizes,
 * crossing 4 MiB stretches and segment ends, checked sector by sector against a reference model.
 */
class PcacheModelTest {

    private static final long BACKING_SIZE = 256L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final long VOLUME_LIMIT = 1L << 30;
    /** Stop before the cache fills: without writeback nothing would ever free a segment. */
    private static final int SEGMENTS_LIMIT = 26;

    @ParameterizedTest(name = "seed={0}")
    @ValueSource(longs = {11, 23, 37, 41, 53})
    void randomWorkloadReadsBackLikeTheModel(long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        long[] model = new long[(int) (BACKING_SIZE / SECTOR)];
        long volume = 0;
        long nextId = 1;
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            int step = 0;
            for (; volume < VOLUME_LIMIT && harness.cache.status().segsUsed() < SEGMENTS_LIMIT; step++) {
                String where = "seed=" + seed + " step=" + step;
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
                            .containsExactly(Arrays.copyOfRange(model, (int) (off / SECTOR),
                                    (int) ((off + len) / SECTOR)));
                } else if (dice < 98) {
                    CacheHarness.await(harness.cache.flushAsync());
                } else {
                    harness.reopen();
                }
            }
            assertThat(step).as("seed=" + seed + " steps before the cache filled").isGreaterThan(100);
            harness.reopen();
            for (long off = 0; off < BACKING_SIZE; off += 4L << 20) {
                assertThat(harness.readIds(off, 4 << 20)).as("seed=" + seed + " final read at " + off)
                        .containsExactly(Arrays.copyOfRange(model, (int) (off / SECTOR),
                                (int) ((off + (4 << 20)) / SECTOR)));
            }
        }
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
