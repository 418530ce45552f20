package org.pcache.cache;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Read-ahead: misses of a sequential stream read the window past the stream into the cache, so the stream's next reads
 * hit; random misses never read ahead; with read-ahead off a stream misses on every read; and a write into a window
 * being read ahead is never shadowed by the window's backing data.
 */
class PcacheReadAheadTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final long BACKING_ID = 7_007;
    private static final int READ = 64 << 10;
    private static final long WINDOW = 1L << 20;

    @Test
    void aSequentialStreamOfMissesReadsAheadSoItsNextReadsHit() throws Exception {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions().withReadAhead(WINDOW))) {
            long start = 8L << 20;
            for (int i = 0; i < ReadAhead.SEQUENTIAL_READS; i++) {
                assertThat(harness.readIds(start + (long) i * READ, READ)).containsOnly(BACKING_ID);
            }
            harness.awaitMissFills();
            CacheStatus.Counters before = harness.cache.status().counters();
            assertThat(before.bytesFromBacking()).as("the stream's reads and one window ahead")
                    .isEqualTo(ReadAhead.SEQUENTIAL_READS * READ + WINDOW);
            long next = start + (long) ReadAhead.SEQUENTIAL_READS * READ;
            int hitsExpected = (int) (WINDOW / 2 / READ);
            for (int i = 0; i < hitsExpected; i++) {
                assertThat(harness.readIds(next + (long) i * READ, READ)).containsOnly(BACKING_ID);
            }
            CacheStatus.Counters after = harness.cache.status().counters();
            assertThat(after.readHitsFull() - before.readHitsFull()).as("the stream's next reads hit")
                    .isEqualTo(hitsExpected);
        }
    }

    @Test
    void aStreamThatKeepsReadingKeepsItsWindowAheadOfIt() throws Exception {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions().withReadAhead(WINDOW))) {
            int reads = 64; // 4 MiB, four windows
            for (int i = 0; i < reads; i++) {
                assertThat(harness.readIds((long) i * READ, READ)).containsOnly(BACKING_ID);
                harness.awaitMissFills();
            }
            CacheStatus.Counters counters = harness.cache.status().counters();
            assertThat(counters.readMisses()).as("only the reads before the stream was seen missed")
                    .isEqualTo(ReadAhead.SEQUENTIAL_READS);
            assertThat(counters.readHitsFull()).isEqualTo(reads - ReadAhead.SEQUENTIAL_READS);
        }
    }

    @Test
    void randomMissesNeverReadAhead() throws Exception {
        long seed = System.nanoTime();
        SplittableRandom random = new SplittableRandom(seed);
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions().withReadAhead(WINDOW))) {
            int reads = 200;
            for (int i = 0; i < reads; i++) {
                // Even 4 KiB slots only: a read never starts where another ended, so no two of them make a stream.
                long off = random.nextLong(BACKING_SIZE / 8192) * 8192;
                assertThat(harness.readIds(off, 4096)).as("seed " + seed).containsOnly(BACKING_ID);
            }
            assertThat(harness.cache.status().counters().bytesFromBacking()).as("seed " + seed)
                    .isLessThanOrEqualTo(reads * 4096L);
        }
    }

    @Test
    void withReadAheadOffAStreamMissesOnEveryRead() throws Exception {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions())) {
            int reads = 16;
            for (int i = 0; i < reads; i++) {
                assertThat(harness.readIds((long) i * READ, READ)).containsOnly(BACKING_ID);
                harness.awaitMissFills();
            }
            assertThat(harness.cache.status().counters().readMisses()).isEqualTo(reads);
            assertThat(harness.cache.status().counters().bytesFromBacking()).isEqualTo((long) reads * READ);
        }
    }

    @Test
    void aWriteIntoTheWindowIsNeverShadowedByTheReadAhead() throws Exception {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions().withReadAhead(WINDOW))) {
            for (int i = 0; i < ReadAhead.SEQUENTIAL_READS; i++) {
                harness.readIds((long) i * READ, READ);
            }
            long inWindow = (long) ReadAhead.SEQUENTIAL_READS * READ + 4096;
            harness.writePattern(inWindow, 8192, 5, Durability.BUFFERED);
            harness.awaitMissFills();
            long[] ids = harness.readIds(inWindow - 4096, 16384);
            assertThat(ids).as("before, the write, after").startsWith(idsOf(BACKING_ID, 8))
                    .endsWith(idsOf(BACKING_ID, 8));
            assertThat(Arrays.copyOfRange(ids, 8, 24)).containsOnly(5L);
        }
    }

    private static long[] idsOf(long id, int sectors) {
        long[] ids = new long[sectors];
        Arrays.fill(ids, id);
        return ids;
    }
}
