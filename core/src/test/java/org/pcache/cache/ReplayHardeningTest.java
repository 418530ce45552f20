package org.pcache.cache;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.ToLongFunction;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

/**
 * Crafted images for every replay hardening check (dm-pcache's 2026 series): each must stop {@link Pcache#open} with a
 * {@link CorruptMediaException} naming the offending field and record, within a bounded time, leave the image byte for
 * byte as it was, and start no thread. The images are real caches, closed, then edited with valid kset CRCs so that
 * only the field under test is wrong. A kset whose CRC is wrong is not corrupt media but the end of the log.
 *
 * <p>The backing device fails every write, so writeback never moves dirty_tail and the base image is the same on
 * every run.
 */
class ReplayHardeningTest {

    /** Not a multiple of 4 MiB, so "beyond the device" and "across a 4 MiB stretch" are different ranges. */
    private static final long BACKING_SIZE = 15L << 20;
    private static final Duration OPEN_TIMEOUT = Duration.ofSeconds(10);
    private static final int KEY_UNDER_TEST = 1;
    private static final int ONE_KEY_KSET = KsetOnMedia.size(1);
    private static final int N_SEGS = (int) ((CacheHarness.CACHE_SIZE - CacheDeviceLayout.SEGMENTS_OFFSET)
            / CacheDeviceLayout.SEGMENT_SIZE);

    /** The base image: kset A holds writes 1 and 2, the next kset write 3, kset C the FUA write 4. */
    private record Image(KsetLogEditor log, KsetLogEditor.Kset a, KsetLogEditor.Kset c, CachePos head) {
    }

    /** One crafted image: how to damage the base image, the field the error must name, and the record's offset. */
    private record Case(String name, Damage damage, String field, ToLongFunction<Image> offset) {
        @Override
        public String toString() {
            return name;
        }
    }

    @FunctionalInterface
    private interface Damage {
        void apply(Image image);
    }

    private CrashSimPmemRegion region;
    private CacheHarness harness;
    private Image image;

    @BeforeEach
    void writeBaseImage() throws IOException {
        region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        harness = CacheHarness.on(region, noWriteback(), CacheHarness.quietOptions());
        harness.writePattern(0, 4096, 1, Durability.BUFFERED);
        harness.writePattern(64 << 10, 8192, 2, Durability.BUFFERED);
        harness.writePattern((4 << 20) + 4096, 4096, 3, Durability.BUFFERED);
        CacheHarness.await(harness.cache.flushAsync());
        harness.writePattern(1 << 20, 4096, 4, Durability.FUA);
        harness.cache.close();
        KsetLogEditor log = new KsetLogEditor(region);
        List<KsetLogEditor.Kset> ksets = log.walk();
        assertThat(ksets).as("base image log").extracting(KsetLogEditor.Kset::keyNum).containsExactly(2, 1, 1);
        image = new Image(log, ksets.get(0), ksets.get(2), log.head());
    }

    @AfterEach
    void closeHarness() {
        harness.close();
    }

    static Stream<Case> corruptions() {
        return Stream.of(
                ksetCase("kset key_num 129", image -> image.log().forceKeyNum(image.a().pos(), 129), "key_num"),
                ksetCase("kset key_num 4096", image -> image.log().forceKeyNum(image.a().pos(), 4096), "key_num"),
                new Case("kset overrunning the data area", ReplayHardeningTest::overrunningKset, "key_num",
                        image -> KsetLogEditor.regionOffset(overrunPos())),
                new Case("LAST kset naming segment n_segs", image -> image.log().writeLast(image.head(), N_SEGS),
                        "next_cache_seg_id", image -> KsetLogEditor.regionOffset(image.head())),
                new Case("LAST kset naming segment 0xFFFFFFFF", image -> image.log().writeLast(image.head(), -1),
                        "next_cache_seg_id", image -> KsetLogEditor.regionOffset(image.head())),
                new Case("LAST chain cycling 0 -> 5 -> 0", image -> {
                    image.log().writeLast(image.head(), 5);
                    image.log().writeLast(new CachePos(5, 0), 0);
                }, "LAST chain", image -> -1),
                new Case("LAST chain cycling 5 -> 6 -> 5", image -> {
                    image.log().writeLast(image.head(), 5);
                    image.log().writeLast(new CachePos(5, 0), 6);
                    image.log().writeLast(new CachePos(6, 0), 5);
                }, "LAST chain", image -> -1),
                new Case("LAST kset pointing at itself", image -> {
                    image.log().writeLast(image.head(), 7);
                    image.log().writeLast(new CachePos(7, 0), 7);
                }, "LAST chain", image -> KsetLogEditor.regionOffset(new CachePos(7, 0))),
                keyCase("key len 0", key -> key.len(0), "len"),
                keyCase("key len 1000", key -> key.len(1000), "len"),
                keyCase("key len 2 GiB", key -> key.len(Integer.MIN_VALUE), "off"),
                keyCase("key off + len beyond the backing device", key -> key.off(BACKING_SIZE - 4096), "off"),
                keyCase("key off near 2^63", key -> key.off(Long.MAX_VALUE - 511), "off"),
                keyCase("key off above 2^63", key -> key.off(0xFFFF_FFFF_FFFF_F000L), "off"),
                keyCase("key off not 512-aligned", key -> key.off((64 << 10) + 8), "off"),
                keyCase("key crossing a 4 MiB boundary", key -> key.off((4 << 20) - 4096), "off"),
                keyCase("key cache_seg_id n_segs", key -> key.cacheSegId(N_SEGS), "cache_seg_id"),
                keyCase("key cache_seg_id 0xFFFFFFFF", key -> key.cacheSegId(-1), "cache_seg_id"),
                keyCase("key data beyond the data area",
                        key -> key.cacheSegOff(CacheDeviceLayout.SEGMENT_DATA_SIZE - 4096), "cache_seg_off"),
                keyCase("key cache_seg_off 0xFFFFFE00", key -> key.cacheSegOff(0xFFFF_FE00), "cache_seg_off"),
                keyCase("key EMPTY flag", key -> key.flags(1), "flags"),
                keyCase("key EMPTY and CLEAN flags", key -> key.flags(3), "flags"),
                keyCase("key unknown flag", key -> key.flags(1 << 5), "flags"),
                keyCase("key ZERO flag in a cache without the DATALESS_KEYS mark", key -> key.flags(1 << 2), "flags"),
                keyCase("key ZERO and DISCARD flags", key -> key.flags(3 << 2), "flags"),
                keyCase("key DISCARD and CLEAN flags", key -> key.flags(1 << 3 | 1 << 1), "flags"),
                keyCase("key seg_gen newer than its segment", key -> key.segGen(1), "seg_gen"),
                keyCase("key seg_gen 2^64 - 1", key -> key.segGen(-1), "seg_gen"),
                new Case("LAST kset chaining into a segment that holds live data", image -> image.log().writeLast(
                        image.head(), image.log().key(image.a().pos(), 0).segId()), "next_cache_seg_id",
                        image -> KsetLogEditor.regionOffset(image.head())),
                new Case("live key whose data lies in a kset log segment", image -> {
                    image.log().writeLast(image.head(), 5);
                    image.log().writeKset(new CachePos(5, 0), 1, new KsetLogEditor.Key(8 << 20, 4096, 0, 0, 0, 0, 0),
                            ONE_KEY_KSET);
                }, "cache_seg_id", image -> KsetLogEditor.regionOffset(new CachePos(5, 0)) + KsetOnMedia.keyOffset(0)),
                tailCase("dirty_tail inside a kset", image -> new CachePos(0, 8)),
                tailCase("dirty_tail past key_head", image -> new CachePos(0, image.head().off() + 64)),
                tailCase("dirty_tail in a segment off the chain", image -> new CachePos(5, 0)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("corruptions")
    void corruptImageIsRefusedWithTheFieldNamedAndNothingWritten(Case corruption) throws Exception {
        corruption.damage().apply(image);

        CorruptMediaException error = assertOpenRefused(corruption.name());

        assertThat(error.field()).as(corruption.name() + ": " + error.getMessage()).isEqualTo(corruption.field());
        long offset = corruption.offset().applyAsLong(image);
        if (offset >= 0) {
            assertThat(error.offset()).as(corruption.name() + ": " + error.getMessage()).isEqualTo(offset);
        }
    }

    @Test
    void dataCrcMismatchOnReplayIsRefused() throws Exception {
        harness.close();
        region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        CacheOptions options = CacheHarness.quietOptions().withDataCrc(true);
        harness = CacheHarness.on(region, noWriteback(), options);
        harness.writePattern(0, 4096, 1, Durability.FUA);
        harness.writePattern(8192, 4096, 2, Durability.FUA);
        harness.cache.close();
        KsetLogEditor log = new KsetLogEditor(region);
        KsetLogEditor.Kset second = log.walk().get(1);
        KsetLogEditor.Key key = log.key(second.pos(), 0);
        long data = KsetLogEditor.dataOffset(key.segId()) + key.segOff() + 100;
        region.write(data, MemorySegment.ofArray(new byte[] {0x5A}), 0, 1);
        region.persist(data, 1);

        CorruptMediaException error = assertOpenRefused("data CRC");

        assertThat(error.field()).as(error.getMessage()).isEqualTo("data_crc");
        assertThat(error.offset()).isEqualTo(KsetLogEditor.regionOffset(second.pos()) + KsetOnMedia.keyOffset(0));
    }

    @Test
    void ksetWithBadCrcEndsTheLogAndKeepsEveryKeyBeforeIt() throws IOException {
        image.log().flipByte(image.c().pos(), (int) KsetOnMedia.keyOffset(0) + 3);

        harness.openAgain();

        assertThat(harness.cache.status().keyHead()).isEqualTo(image.c().pos());
        assertThat(harness.readIds(0, 4096)).containsOnly(1L);
        assertThat(harness.readIds(64 << 10, 8192)).containsOnly(2L);
        assertThat(harness.readIds((4 << 20) + 4096, 4096)).containsOnly(3L);
        assertThat(harness.readIds(1 << 20, 4096)).as("the write in the torn kset").containsOnly(SectorPattern.ZERO);
        harness.writePattern(2 << 20, 4096, 5, Durability.FUA);
        harness.reopen();
        assertThat(harness.readIds(2 << 20, 4096)).as("a write after the torn kset").containsOnly(5L);
        assertThat(harness.readIds(64 << 10, 8192)).containsOnly(2L);
    }

    @Test
    void keysOlderThanTheirSegmentAreSkippedAndHoldNoSegment() throws IOException {
        KsetLogEditor.Key key = image.log().key(image.a().pos(), 0);
        image.log().segmentGen(key.segId(), 1);

        harness.openAgain();

        assertThat(harness.readIds(0, 4096)).containsOnly(SectorPattern.ZERO);
        assertThat(harness.readIds(64 << 10, 8192)).containsOnly(SectorPattern.ZERO);
        assertThat(harness.cache.status().keyHead()).isEqualTo(image.head());
        harness.writePattern(0, 4096, 9, Durability.FUA);
        harness.reopen();
        assertThat(harness.readIds(0, 4096)).containsOnly(9L);
    }

    /** Opens the damaged image, which must fail with exactly a CorruptMediaException, write nothing, start nothing. */
    private CorruptMediaException assertOpenRefused(String what) throws InterruptedException {
        long stores = region.storeCount();
        byte[][] before = snapshot();
        Set<Thread> threads = CacheHarness.pcacheThreads();

        Throwable thrown = catchThrowable(() -> assertTimeoutPreemptively(OPEN_TIMEOUT,
                () -> Pcache.open(region, harness.backing, harness.options), what + ": open did not return").close());

        assertThat(thrown).as(what).isExactlyInstanceOf(CorruptMediaException.class);
        assertThat(region.storeCount()).as(what + ": stores to the region").isEqualTo(stores);
        assertThat(snapshot()).as(what + ": image bytes").isDeepEqualTo(before);
        assertThat(CacheHarness.threadsStillAlive(threads, Duration.ofSeconds(5))).as(what + ": threads").isEmpty();
        return (CorruptMediaException) thrown;
    }

    /** The device metadata, every segment header and the start of the log. */
    private byte[][] snapshot() {
        byte[][] parts = new byte[N_SEGS + 2][];
        parts[0] = region.volatileBytes(0, (int) CacheDeviceLayout.SEGMENTS_OFFSET);
        for (int seg = 0; seg < N_SEGS; seg++) {
            parts[seg + 1] = region.volatileBytes(CacheDeviceLayout.segmentOffset(seg),
                    (int) CacheDeviceLayout.SEGMENT_DATA_OFFSET + 64);
        }
        parts[N_SEGS + 1] = region.volatileBytes(KsetLogEditor.dataOffset(0), 64 << 10);
        return parts;
    }

    /** A backing device whose writes all fail: dirty data stays dirty, the log stays where the test put it. */
    private static FaultEngine noWriteback() {
        return new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
    }

    private static CachePos overrunPos() {
        return new CachePos(0, CacheDeviceLayout.SEGMENT_DATA_SIZE - 64);
    }

    /** A two-key kset where only 64 bytes remain: written up to the end of the data area, tails moved onto it. */
    private static void overrunningKset(Image image) {
        KsetLogEditor.Key key = image.log().key(image.a().pos(), 0);
        image.log().writeKset(overrunPos(), 2, key, 64);
        image.log().keyTail(overrunPos());
        image.log().dirtyTail(overrunPos());
    }

    private static Case ksetCase(String name, Damage damage, String field) {
        return new Case(name, damage, field, image -> KsetLogEditor.regionOffset(image.a().pos()));
    }

    private static Case keyCase(String name, Consumer<KeyOnMedia> edit, String field) {
        return new Case(name, image -> image.log().editKey(image.a().pos(), KEY_UNDER_TEST, edit), field,
                image -> KsetLogEditor.regionOffset(image.a().pos()) + KsetOnMedia.keyOffset(KEY_UNDER_TEST));
    }

    private static Case tailCase(String name, Function<Image, CachePos> dirtyTail) {
        return new Case(name, image -> image.log().dirtyTail(dirtyTail.apply(image)), "position",
                image -> CacheDeviceLayout.DIRTY_TAIL_OFFSET);
    }
}
