package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.backing.MemoryEngine;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.LongStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Seeded sequences of writes (some in long sequential runs past the cutoff), reads, mode switches, flushes, drains
 * and reopens over a small hot range, checked sector by sector against a model: every read sees the newest data, and
 * after every drain the backing device alone holds exactly the model, so no mode, switch or bypass ever let writeback
 * copy older data over newer. The seed is in every assertion's description.
 */
class PcacheModeSwitchModelTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final int STEPS = 600;

    static LongStream seeds() {
        return SoakSeeds.soaking() ? SoakSeeds.soak() : LongStream.of(3, 17, 29, 101);
    }

    @ParameterizedTest(name = "seed={0}")
    @MethodSource("seeds")
    void noModeSwitchOrBypassLetsOlderDataWinAnywhere(long seed) throws IOException {
        SplittableRandom random = new SplittableRandom(seed);
        long[] model = new long[(int) (BACKING_SIZE / SECTOR)];
        long nextId = 1;
        CacheOptions options = CacheHarness.quietOptions().withSequentialCutoff(1 << 20);
        try (CacheHarness harness = CacheHarness.mapped(new MemoryEngine(BACKING_SIZE), options)) {
            ClientStream stream = harness.cache.openStream();
            long runAt = -1;
            for (int step = 0; step < STEPS; step++) {
                String where = "seed=" + seed + " step=" + step + " mode=" + harness.cache.mode();
                int dice = random.nextInt(100);
                if (dice < 45) {
                    long off;
                    int len;
                    if (runAt >= 0 && random.nextInt(3) > 0) {
                        off = runAt;
                        len = (int) Math.min(256 << 10, BACKING_SIZE - off);
                    } else {
                        off = random.nextLong(BACKING_SIZE / SECTOR / 4) * SECTOR; // a hot quarter: many overlaps
                        len = (int) Math.min((1 + random.nextInt(256)) * (long) SECTOR, BACKING_SIZE - off);
                    }
                    runAt = off + len < BACKING_SIZE ? off + len : -1;
                    MemorySegment buf = MemorySegment.ofArray(new byte[len]);
                    SectorPattern.fill(buf, off, nextId);
                    Durability durability = random.nextInt(10) == 0 ? Durability.FUA : Durability.BUFFERED;
                    CacheHarness.await(stream.writeAsync(off, buf, durability));
                    Arrays.fill(model, (int) (off / SECTOR), (int) ((off + len) / SECTOR), nextId++);
                } else if (dice < 75) {
                    long off = random.nextLong(BACKING_SIZE / SECTOR / 4) * SECTOR;
                    int len = (1 + random.nextInt(512)) * SECTOR;
                    MemorySegment buf = MemorySegment.ofArray(new byte[len]);
                    CacheHarness.await((random.nextBoolean() ? stream : harness.cache.openStream())
                            .readAsync(off, buf));
                    assertThat(ids(buf, off)).as(where + " read " + off + "+" + len)
                            .containsExactly(slice(model, off, len));
                } else if (dice < 87) {
                    CacheMode[] modes = CacheMode.values();
                    harness.cache.setMode(modes[random.nextInt(modes.length)]);
                } else if (dice < 92) {
                    CacheHarness.await(harness.cache.flushAsync());
                } else if (dice < 97) {
                    harness.awaitMissFills();
                    CacheHarness.await(harness.cache.drainAsync());
                    assertBackingHoldsModel(harness, model, where + " after a drain");
                } else {
                    harness.reopen();
                    stream = harness.cache.openStream();
                }
            }
            CacheHarness.await(harness.cache.drainAsync());
            assertBackingHoldsModel(harness, model, "seed=" + seed + " at the end");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private static void assertBackingHoldsModel(CacheHarness harness, long[] model, String where)
            throws IOException {
        int chunk = 4 << 20;
        for (long off = 0; off < BACKING_SIZE; off += chunk) {
            MemorySegment buf = MemorySegment.ofArray(new byte[chunk]);
            harness.backing.read(off, buf);
            assertThat(ids(buf, off)).as(where + ": backing alone at " + off).containsExactly(slice(model, off, chunk));
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
}
