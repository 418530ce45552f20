package org.pcache.cache;

import org.assertj.core.groups.Tuple;
import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.MappedPmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Offline check, dump and recover of cache images. */
class CacheImageTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final int MIB = 1 << 20;

    @Test
    void aCleanImageChecksCleanAndItsLogListsEveryWrite() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions().withDataCrc(true))) {
            for (int i = 0; i < 8; i++) {
                harness.writePattern((long) i * MIB, MIB, i + 1, Durability.BUFFERED);
            }
            harness.cache.flush();
            CachePos head = harness.cache.status().keyHead();
            harness.cache.close();

            CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
            assertThat(image.check()).isEmpty();
            List<CacheImage.LoggedKey> keys = new ArrayList<>();
            assertThat(image.walk(kset -> keys.addAll(kset.keys()))).isEqualTo(head);
            assertThat(keys).extracting(CacheImage.LoggedKey::off)
                    .containsExactlyInAnyOrder(0L, 1L * MIB, 2L * MIB, 3L * MIB, 4L * MIB, 5L * MIB, 6L * MIB,
                            7L * MIB);
            assertThat(image.cacheInfo().dataCrc()).isTrue();
            harness.openAgain();
        }
    }

    @Test
    void recoverWritesEveryDirtyExtentOntoAFreshBackingDevice() throws Exception {
        FaultEngine deadBacking = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(deadBacking, CacheHarness.quietOptions())) {
            for (int i = 0; i < 16; i++) {
                harness.writePattern((long) i * MIB, MIB, i + 1, Durability.BUFFERED);
            }
            harness.writePattern(0, MIB, 99, Durability.FUA);
            harness.cache.flush();
            harness.cache.close();

            CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
            assertThat(image.dirtyBytes()).isEqualTo(17L * MIB);
            try (BackingDevice rescue = BackingDevice.start(new MemoryEngine(BACKING_SIZE))) {
                List<Long> progress = new ArrayList<>();
                CacheImage.Recovery recovery = image.recover(rescue, progress::add);
                // The FUA rewrite of MiB 0 shares a kset with the first write there: only the later one goes out.
                assertThat(recovery.bytes()).isEqualTo(16L * MIB);
                assertThat(progress).as("progress ends at dirtyBytes, overwritten extents included").isNotEmpty()
                        .endsWith(17L * MIB);
                MemorySegment back = MemorySegment.ofArray(new byte[MIB]);
                rescue.read(0, back);
                assertThat(SectorPattern.idOf(back, 0, 0)).isEqualTo(99);
                rescue.read(15L * MIB, back);
                assertThat(SectorPattern.idOf(back, 0, 15L * MIB)).isEqualTo(16);
            }
            harness.openAgain();
        }
    }

    @Test
    void checkDumpAndRecoverUnderstandDatalessKeys() throws Exception {
        FaultEngine deadBacking = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(deadBacking, CacheHarness.quietOptions().withDataCrc(true))) {
            harness.writePattern(0, 8 * MIB, 1, Durability.BUFFERED);
            harness.cache.flush();
            CacheHarness.await(harness.cache.writeZeroesAsync(MIB, MIB, Durability.BUFFERED));
            CacheHarness.await(harness.cache.discardAsync(4L * MIB, MIB));
            CacheHarness.await(harness.cache.invalidateAsync(6L * MIB, MIB, Durability.BUFFERED));
            harness.cache.flush();
            harness.cache.close();

            CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
            assertThat(image.check()).isEmpty();
            assertThat(image.cacheInfo().datalessKeys()).isTrue();
            List<CacheImage.LoggedKey> keys = new ArrayList<>();
            image.walk(kset -> keys.addAll(kset.keys()));
            assertThat(keys).filteredOn(key -> key.seg() < 0)
                    .extracting(CacheImage.LoggedKey::kind, CacheImage.LoggedKey::off, CacheImage.LoggedKey::len)
                    .containsExactly(Tuple.tuple(CacheImage.Kind.ZERO, (long) MIB, MIB),
                            Tuple.tuple(CacheImage.Kind.DISCARD, 4L * MIB, MIB),
                            Tuple.tuple(CacheImage.Kind.INVALIDATE, 6L * MIB, MIB));
            assertThat(image.dirtyBytes()).as("data only").isEqualTo(8L * MIB);

            MemoryEngine rescued = CacheHarness.patternedMemory(BACKING_SIZE, 7);
            try (BackingDevice rescue = BackingDevice.start(rescued)) {
                image.recover(rescue, progress -> { });
                MemorySegment back = MemorySegment.ofArray(new byte[8 * MIB]);
                rescue.read(0, back);
                long[] expected = {1, SectorPattern.ZERO, 1, 1, SectorPattern.ZERO, 1, 1, 1};
                for (int mib = 0; mib < 8; mib++) {
                    assertThat(SectorPattern.idOf(back, (long) mib * MIB, (long) mib * MIB)).as("MiB " + mib)
                            .isEqualTo(expected[mib]);
                }
            }
            harness.openAgain();
        }
    }

    @Test
    void checkNamesAKeyThatFailsValidation() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            harness.writePattern(0, MIB, 1, Durability.FUA);
            harness.cache.close();
            corruptFirstKey(harness, key -> key.len(100));

            List<String> problems = CacheImage.inspect(harness.region, BACKING_SIZE).check();
            assertThat(problems).hasSize(1);
            assertThat(problems.getFirst()).contains("len").contains("100");
            assertThatThrownBy(harness::openAgain).isInstanceOf(CorruptMediaException.class);
            harness.reformat();
        }
    }

    @Test
    void checkFindsCorruptedDataWhenTheCacheKeepsCrcs() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions().withDataCrc(true))) {
            harness.writePattern(0, MIB, 1, Durability.FUA);
            harness.cache.close();
            CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
            List<CacheImage.LoggedKey> keys = new ArrayList<>();
            image.walk(kset -> keys.addAll(kset.keys()));
            CacheImage.LoggedKey key = keys.getFirst();
            long data = CacheDeviceLayout.segmentOffset(image.segments().get(key.seg()).physicalId())
                    + CacheDeviceLayout.SEGMENT_DATA_OFFSET + key.segOff();
            harness.region.write(data + 1000, MemorySegment.ofArray(new byte[] {1, 2, 3}), 0, 3);

            assertThat(CacheImage.inspect(harness.region, BACKING_SIZE).check())
                    .anySatisfy(problem -> assertThat(problem).contains("data_crc"));
            harness.reformat();
        }
    }

    @Test
    void aBlankDeviceIsNotAnImage() throws IOException {
        Path file = Files.createTempFile(Path.of("/dev/shm"), "pcache-blank-", ".img");
        Files.delete(file);
        try (MappedPmemRegion region = TestRegions.mapped(file, CacheHarness.CACHE_SIZE)) {
            assertThatThrownBy(() -> CacheImage.inspect(region, BACKING_SIZE))
                    .isInstanceOf(CorruptMediaException.class).hasMessageContaining("magic");
            assertThat(Files.size(file)).isEqualTo(CacheHarness.CACHE_SIZE);
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /** Rewrites the first kset of the log with its first key changed by {@code change}, resealed with a valid CRC. */
    private static void corruptFirstKey(CacheHarness harness, Consumer<KeyOnMedia> change)
            throws IOException {
        CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
        CachePos first = image.keyTail();
        long at = CacheDeviceLayout.segmentOffset(image.segments().get(first.seg()).physicalId())
                + CacheDeviceLayout.SEGMENT_DATA_OFFSET + first.off();
        MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
        KsetOnMedia kset = new KsetOnMedia().wrap(staging);
        kset.decode(harness.region, at, KsetOnMedia.MAX_SIZE);
        change.accept(kset.key(0, new KeyOnMedia()));
        int size = kset.sealKeys(kset.keyNum());
        harness.region.write(at, staging, 0, size);
        harness.region.persist(at, size);
    }
}
