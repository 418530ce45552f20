package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.DataCrcMismatchException;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * With data_crc on, a hit whose cached bytes no longer match their CRC fails with {@link CacheIoException} instead of
 * returning wrong data, whether the key came from a write or from a miss fill; keys cut or split by later writes still
 * verify; and a cache cannot be reopened with the other data_crc setting.
 */
class PcacheDataCrcTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final long BACKING_ID = 4_242;
    private static final CacheOptions CRC_ON = CacheHarness.quietOptions().withDataCrc(true);

    @Test
    void hitOnCorruptedWrittenDataFailsWithCacheIoException() throws IOException {
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE),
                new MemoryEngine(BACKING_SIZE), CRC_ON)) {
            harness.writePattern(0, 16 << 10, 1, Durability.FUA);
            harness.writePattern(1 << 20, 8 << 10, 2, Durability.FUA);
            KsetLogEditor.Key key = keyAt(harness, 0);

            corrupt(harness, key, 5000);

            Throwable error = catchThrowable(() -> harness.readIds(0, 16 << 10));
            assertThat(error).isInstanceOf(CacheIoException.class).hasMessageContaining("data CRC mismatch");
            assertThat(catchThrowable(() -> harness.readIds(4608, 512))).as("the corrupted sector alone")
                    .isInstanceOf(CacheIoException.class);
            assertThat(harness.cache.status().counters().dataCrcErrors()).isEqualTo(2);
            assertThat(harness.readIds(1 << 20, 8 << 10)).as("an intact key").containsOnly(2L);
        }
    }

    @Test
    void hitOnCorruptedMissFillFailsWithCacheIoException() throws IOException, InterruptedException {
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE),
                CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID), CRC_ON)) {
            assertThat(harness.readIds(2 << 20, 32 << 10)).containsOnly(BACKING_ID);
            harness.awaitMissFills();
            CacheHarness.await(harness.cache.flushAsync());
            KsetLogEditor.Key key = keyAt(harness, 2 << 20);
            assertThat(key.flags()).as("a miss fill is a CLEAN key").isEqualTo(2);

            corrupt(harness, key, 0);

            assertThat(catchThrowable(() -> harness.readIds(2 << 20, 32 << 10)))
                    .isInstanceOf(CacheIoException.class);
        }
    }

    @Test
    void piecesOfCutAndSplitKeysStillVerify() throws IOException {
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE),
                new MemoryEngine(BACKING_SIZE), CRC_ON)) {
            harness.writePattern(0, 64 << 10, 1, Durability.BUFFERED);
            harness.writePattern(16 << 10, 8 << 10, 2, Durability.BUFFERED);
            harness.writePattern(56 << 10, 16 << 10, 3, Durability.BUFFERED);
            harness.writePattern(40 << 10, 512, 4, Durability.BUFFERED);

            long[] expected = expectedPieces();
            assertThat(harness.readIds(0, 80 << 10)).containsExactly(expected);
            CacheHarness.await(harness.cache.flushAsync());
            harness.reopen();
            assertThat(harness.readIds(0, 80 << 10)).as("after replay").containsExactly(expected);
            assertThat(harness.cache.status().counters().dataCrcErrors()).isZero();
        }
    }

    @ParameterizedTest(name = "created with data_crc={0}")
    @ValueSource(booleans = {true, false})
    void reopeningWithTheOtherDataCrcSettingIsRefused(boolean created) throws Exception {
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        CacheOptions options = CacheHarness.quietOptions().withDataCrc(created);
        try (CacheHarness harness = CacheHarness.on(region, new MemoryEngine(BACKING_SIZE), options)) {
            harness.writePattern(0, 4096, 1, Durability.FUA);
            harness.cache.close();
            long stores = region.storeCount();
            Set<Thread> threads = CacheHarness.pcacheThreads();

            Throwable error = catchThrowable(() -> Pcache.open(region, harness.backing, options.withDataCrc(!created))
                    .close());

            assertThat(error).isExactlyInstanceOf(DataCrcMismatchException.class);
            assertThat(((DataCrcMismatchException) error).existing()).isEqualTo(created);
            assertThat(region.storeCount()).as("stores to the region").isEqualTo(stores);
            assertThat(CacheHarness.threadsStillAlive(threads, Duration.ofSeconds(5))).isEmpty();
            harness.openAgain();
            assertThat(harness.readIds(0, 4096)).as("the cache is intact").containsOnly(1L);
        }
    }

    /** Write 1 over [0, 64K), split by write 2 at [16K, 24K) and write 4 at [40K, 40.5K), its tail cut by 3 at 56K. */
    private static long[] expectedPieces() {
        long[] ids = new long[160];
        for (int sector = 0; sector < ids.length; sector++) {
            long at = sector * 512L;
            ids[sector] = at < (64 << 10) ? 1 : SectorPattern.ZERO;
            if (at >= (16 << 10) && at < (24 << 10)) {
                ids[sector] = 2;
            }
            if (at >= (56 << 10) && at < (72 << 10)) {
                ids[sector] = 3;
            }
            if (at == (40 << 10)) {
                ids[sector] = 4;
            }
        }
        return ids;
    }

    /** The newest durable key of the log that starts at backing offset {@code off}. */
    private static KsetLogEditor.Key keyAt(CacheHarness harness, long off) {
        return new KsetLogEditor(harness.region).keys().stream().filter(key -> key.off() == off)
                .reduce((first, second) -> second)
                .orElseThrow(() -> new AssertionError("no durable key at " + off));
    }

    /** Overwrites 16 bytes of {@code key}'s cached data, {@code at} bytes in, through the region. */
    private static void corrupt(CacheHarness harness, KsetLogEditor.Key key, int at) {
        long offset = KsetLogEditor.dataOffset(key.segId()) + key.segOff() + at;
        byte[] garbage = new byte[16];
        harness.region.read(offset, MemorySegment.ofArray(garbage), 0, garbage.length);
        for (int i = 0; i < garbage.length; i++) {
            garbage[i] = (byte) ~garbage[i];
        }
        harness.region.write(offset, MemorySegment.ofArray(garbage), 0, garbage.length);
        harness.region.persist(offset, garbage.length);
    }
}
