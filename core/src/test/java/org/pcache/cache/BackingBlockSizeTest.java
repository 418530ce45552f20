package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.pmem.TestRegions;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CrashSimPmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

/**
 * A backing device that needs I/O aligned to more than a 512-byte sector (an NBD export with a 4 KiB minimum block
 * size, O_DIRECT on a 4 KiB-sector disk) is refused when the cache opens or an image is recovered onto it, before
 * anything is written; one whose alignment divides a sector is taken.
 */
class BackingBlockSizeTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final int MIB = 1 << 20;

    @Test
    void openRefusesABackingDeviceThatNeeds4KiBAlignedIoAndLeavesTheRegionBlank() throws IOException {
        CrashSimPmemRegion region = TestRegions.crashSim(CacheHarness.CACHE_SIZE);
        try (BackingDevice backing = BackingDevice.start(new MemoryEngine(BACKING_SIZE, 4096))) {
            Throwable error = catchThrowable(() -> Pcache.open(region, backing, CacheHarness.quietOptions()));

            assertThat(error).isInstanceOf(BackingBlockSizeException.class)
                    .hasMessageContaining("needs 4096-byte aligned I/O").hasMessageContaining("512-byte sectors");
            assertThat(((BackingBlockSizeException) error).alignment()).isEqualTo(4096);
        }
        MemorySegment head = MemorySegment.ofArray(new byte[64 << 10]);
        region.read(0, head, 0, head.byteSize());
        assertThat(head.toArray(ValueLayout.JAVA_BYTE)).as("nothing formatted").containsOnly(0);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 256, 512})
    void openTakesABackingDeviceWhoseAlignmentDividesASector(int alignment) throws IOException {
        try (CacheHarness harness = CacheHarness.on(TestRegions.crashSim(CacheHarness.CACHE_SIZE),
                new MemoryEngine(BACKING_SIZE, alignment), CacheHarness.quietOptions())) {
            harness.writePattern(512, 1536, 7, Durability.FUA);
            assertThat(harness.readIds(512, 1536)).containsOnly(7L);
        }
    }

    @Test
    void recoverRefusesABackingDeviceThatNeeds4KiBAlignedIo() throws Exception {
        FaultEngine deadBacking = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        try (CacheHarness harness = CacheHarness.mapped(deadBacking, CacheHarness.quietOptions())) {
            harness.writePattern(0, MIB, 3, Durability.FUA);
            harness.cache.close();
            CacheImage image = CacheImage.inspect(harness.region, BACKING_SIZE);
            MemoryEngine rescueEngine = new MemoryEngine(BACKING_SIZE, 4096);
            try (BackingDevice rescue = BackingDevice.start(rescueEngine)) {
                List<Long> progress = new ArrayList<>();

                Throwable error = catchThrowable(() -> image.recover(rescue, progress::add));

                assertThat(error).isInstanceOf(BackingBlockSizeException.class);
                assertThat(progress).as("no kset written").isEmpty();
                MemorySegment back = MemorySegment.ofArray(new byte[MIB]);
                rescue.read(0, back);
                assertThat(back.toArray(ValueLayout.JAVA_BYTE)).containsOnly(0);
            }
            harness.openAgain();
        }
    }
}
