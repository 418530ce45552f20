package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.pmem.TestRegions;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CrashSimPmemRegion;
import org.pcache.pmem.FaultyPmemRegion;
import org.pcache.pmem.RegionFailedException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A segment whose new generation cannot be made durable is neither freed nor left half invalidated: it stays in use at
 * its old generation, in memory as on the media, and the cache fails, so nothing waits for the segment while the cache
 * looks healthy; the next open, which rebuilds the segment map from the log, has it back.
 */
class SegmentInvalidationFailureTest {

    @Test
    void aFailedGenerationWriteKeepsTheSegmentAtItsOldGenerationAndFailsTheCache() throws IOException {
        CrashSimPmemRegion sim = TestRegions.crashSim(CacheDeviceLayout.MIN_SIZE);
        FaultyPmemRegion faulty = new FaultyPmemRegion(sim);
        FailStopRegion failStop = new FailStopRegion(faulty);
        CacheDevice device = CacheDevice.open(failStop, CacheDevice.Options.defaults());
        List<long[]> freed = new ArrayList<>();
        SegmentMap segments = new SegmentMap(device, freed::add);
        new Replay(device, segments, new KeyTree(1 << 30), 1 << 30, false).run();
        CacheSegment seg = segments.allocateData();
        long gen = seg.gen();
        seg.retain();
        int used = segments.usedCount();

        faulty.failDrain("writeSegmentGen", new UncheckedIOException(new IOException("msync: EIO")));
        assertThatThrownBy(() -> segments.release(seg)).isInstanceOf(RegionFailedException.class);

        assertThat(seg.gen()).as("the generation in memory").isEqualTo(gen);
        assertThat(device.segmentGen(seg.id())).as("the generation written").isEqualTo(gen);
        assertThat(segments.usedCount()).as("the segment stays in use").isEqualTo(used);
        assertThat(freed).as("nobody is told it is free").isEmpty();
        assertThat(failStop.health().phase()).isEqualTo(CacheHealth.Phase.FAILED);
        assertThat(failStop.health().cause()).contains("msync: EIO");

        sim.powerCut(5);
        CacheDevice reopened = CacheDevice.open(sim, CacheDevice.Options.defaults());
        SegmentMap rebuilt = new SegmentMap(reopened, ranges -> { });
        new Replay(reopened, rebuilt, new KeyTree(1 << 30), 1 << 30, false).run();
        assertThat(rebuilt.usedCount()).as("after the restart the segment is free").isEqualTo(used - 1);
        sim.close();
    }
}
