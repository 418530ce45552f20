package org.pcache.cache;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.MemoryEngine;

/**
 * {@link Pcache#segmentUses()} tells dirty data segments from clean ones: a segment written to is DIRTY until
 * writeback has put its data on the backing device, then DATA; a miss fill's segment is DATA from the start.
 */
class DirtySegmentsTest {

    private static final long BACKING_SIZE = 64L << 20;

    private CacheHarness harness;

    @AfterEach
    void close() {
        if (harness != null) {
            harness.close();
        }
    }

    @Test
    void aWrittenSegmentIsDirtyUntilWrittenBackThenClean() throws IOException {
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        harness = CacheHarness.mapped(backing, CacheHarness.quietOptions());
        harness.writePattern(0, 64 << 10, 1, Durability.FUA);
        harness.writePattern(8 << 20, 64 << 10, 2, Durability.FUA);

        List<SegmentUse> dirty = uses();
        assertThat(dirty).as("the written data, not yet on the backing device (its writes fail)")
                .contains(SegmentUse.DIRTY).doesNotContain(SegmentUse.DATA).contains(SegmentUse.LOG);

        backing.clear();
        harness.cache.drain();
        List<SegmentUse> clean = uses();
        assertThat(clean).as("after the drain").doesNotContain(SegmentUse.DIRTY).contains(SegmentUse.DATA);
        assertThat(clean.indexOf(SegmentUse.DATA)).isEqualTo(dirty.indexOf(SegmentUse.DIRTY));
    }

    @Test
    void dirtyZeroAndDiscardRecordsMarkNoSegment() throws IOException {
        FaultEngine backing = new FaultEngine(new MemoryEngine(BACKING_SIZE)).failAll(EngineOp.WRITE);
        harness = CacheHarness.mapped(backing, CacheHarness.quietOptions());
        CacheHarness.await(harness.cache.writeZeroesAsync(0, 8 << 20, Durability.FUA));
        CacheHarness.await(harness.cache.discardAsync(16 << 20, 8 << 20, Durability.FUA));
        assertThat(uses()).as("data-less records hold no data segment").doesNotContain(SegmentUse.DIRTY)
                .contains(SegmentUse.LOG);
    }

    @Test
    void aSegmentHoldingOnlyMissFillsIsClean() throws IOException {
        harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, 7), CacheHarness.quietOptions());
        assertThat(harness.readIds(1 << 20, 64 << 10)).containsOnly(7L);
        long deadline = System.nanoTime() + CacheHarness.TIMEOUT.toNanos();
        while (!uses().contains(SegmentUse.DATA) && System.nanoTime() < deadline) {
            harness.cache.flush();
            LockSupport.parkNanos(1_000_000);
        }

        assertThat(uses()).as("a miss fill is already on the backing device").contains(SegmentUse.DATA)
                .doesNotContain(SegmentUse.DIRTY);
    }

    private List<SegmentUse> uses() {
        return Arrays.asList(harness.cache.segmentUses());
    }
}
