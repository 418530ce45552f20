package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.FilterEngine;
import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheInfoOnMedia;
import org.pcache.pmem.KeyOnMedia;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Write-zeroes, discards and invalidations are data-less key records: they take no data space, apply to the index at
 * once, survive a reopen (replay), are written back in log order as write-zeroes and discards (an invalidation as
 * nothing), leave the index when GC reclaims them, and mark cache_info with the DATALESS_KEYS extension before the
 * first one is written.
 */
class DatalessKeysTest {

    private static final long MIB = 1L << 20;
    private static final long BACKING_SIZE = 64 * MIB;
    private static final int SECTOR = SectorPattern.SECTOR;
    /** The write id of the pattern the backing device starts with. */
    private static final long BACKING_ID = 7;

    @Test
    void writeZeroesReadsZeroesTakesNoDataSpaceAndSurvivesAReopen() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions())) {
            harness.writePattern(0, (int) (8 * MIB), 1, Durability.BUFFERED);
            int usedBefore = harness.cache.status().segsUsed();

            CacheHarness.await(harness.cache.writeZeroesAsync(2 * MIB, 40 * MIB, Durability.BUFFERED));

            assertThat(harness.cache.status().segsUsed()).as("segments used after 40 MiB of zeroes")
                    .isEqualTo(usedBefore);
            assertRange(harness, 0, 2 * MIB, 1, "data before the zeroes");
            assertRange(harness, 2 * MIB, 42 * MIB, SectorPattern.ZERO, "zeroed");
            assertRange(harness, 42 * MIB, BACKING_SIZE, BACKING_ID, "backing after the zeroes");

            harness.cache.flush();
            harness.reopen();

            assertRange(harness, 0, 2 * MIB, 1, "data before the zeroes, replayed");
            assertRange(harness, 2 * MIB, 42 * MIB, SectorPattern.ZERO, "zeroed, replayed");
            assertRange(harness, 42 * MIB, BACKING_SIZE, BACKING_ID, "backing after the zeroes, replayed");
        }
    }

    @Test
    void datalessRecordsCarryNoCacheSegmentAndSplitAtStretches() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions().withKsetCount(1))) {
            CacheHarness.await(harness.cache.writeZeroesAsync(2 * MIB, 6 * MIB, Durability.FUA));
            CacheHarness.await(harness.cache.discardAsync(8 * MIB, SECTOR));
            CacheHarness.await(harness.cache.invalidateAsync(12 * MIB, 4 * MIB, Durability.BUFFERED));
            harness.cache.flush();

            KsetLogEditor log = new KsetLogEditor(harness.region);
            List<KsetLogEditor.Key> keys = new ArrayList<>();
            for (KsetLogEditor.Kset kset : log.walk()) {
                for (int i = 0; i < kset.keyNum(); i++) {
                    keys.add(log.key(kset.pos(), i));
                }
            }
            int none = KeyOnMedia.NO_SEGMENT;
            assertThat(keys).containsExactly(
                    new KsetLogEditor.Key(2 * MIB, (int) (2 * MIB), KeyOnMedia.FLAG_ZERO, none, 0, 0, 0),
                    new KsetLogEditor.Key(4 * MIB, (int) (4 * MIB), KeyOnMedia.FLAG_ZERO, none, 0, 0, 0),
                    new KsetLogEditor.Key(8 * MIB, SECTOR, KeyOnMedia.FLAG_DISCARD, none, 0, 0, 0),
                    new KsetLogEditor.Key(12 * MIB, (int) (4 * MIB), KeyOnMedia.FLAG_INVALIDATE, none, 0, 0, 0));
        }
    }

    @Test
    void laterKeysWinOverDatalessOnesAndTheOtherWayRound() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID),
                CacheHarness.quietOptions())) {
            harness.writePattern(0, (int) (4 * MIB), 1, Durability.BUFFERED);
            CacheHarness.await(harness.cache.discardAsync(MIB, 2 * MIB));
            harness.writePattern(2 * MIB, SECTOR * 8, 2, Durability.BUFFERED);
            CacheHarness.await(harness.cache.writeZeroesAsync(3 * MIB - SECTOR, 2 * SECTOR, Durability.BUFFERED));
            long[] model = model(4 * MIB, 1);
            fill(model, MIB, 3 * MIB, SectorPattern.ZERO);
            fill(model, 2 * MIB, 2 * MIB + SECTOR * 8, 2);
            fill(model, 3 * MIB - SECTOR, 3 * MIB + SECTOR, SectorPattern.ZERO);

            assertThat(harness.readIds(0, (int) (4 * MIB))).as("live").containsExactly(model);
            harness.cache.flush();
            harness.reopen();
            assertThat(harness.readIds(0, (int) (4 * MIB))).as("replayed").containsExactly(model);
            harness.cache.drain();
            Pcache fresh = harness.reformat();
            assertThat(fresh.status().keyHead().toString()).isEqualTo("0:0");
            assertThat(harness.readIds(0, (int) (4 * MIB))).as("backing device alone").containsExactly(model);
        }
    }

    @Test
    void writebackSendsZeroesAndDiscardsInLogOrder() throws IOException {
        RecordingEngine recording = new RecordingEngine(new MemoryEngine(BACKING_SIZE));
        try (CacheHarness harness = CacheHarness.mapped(recording, CacheHarness.quietOptions().withKsetCount(1))) {
            harness.writePattern(0, (int) MIB, 1, Durability.BUFFERED);
            harness.cache.flush();
            CacheHarness.await(harness.cache.discardAsync(0, MIB));
            harness.cache.flush();
            harness.writePattern(0, SECTOR, 2, Durability.BUFFERED);
            harness.cache.flush();
            CacheHarness.await(harness.cache.writeZeroesAsync(0, 9 * MIB, Durability.BUFFERED));
            harness.cache.flush();
            harness.writePattern(5 * MIB, SECTOR, 3, Durability.BUFFERED);
            harness.cache.flush();

            harness.cache.drain();

            assertThat(recording.ops()).containsExactly(
                    "write 0+1048576", "discard 0+1048576", "write 0+512",
                    "write-zeroes 0+4194304", "write-zeroes 4194304+4194304", "write-zeroes 8388608+1048576",
                    "write 5242880+512");
            assertThat(harness.cache.status().writeback().bytesWritten()).as("data bytes written back")
                    .isEqualTo(MIB + 2 * SECTOR);
        }
    }

    @Test
    void datalessKeysOfOneKsetCollapseWithItsDataKeysLaterWinning() throws IOException {
        RecordingEngine recording = new RecordingEngine(new MemoryEngine(BACKING_SIZE));
        try (CacheHarness harness = CacheHarness.mapped(recording, CacheHarness.quietOptions().withKsetCount(1))) {
            harness.writePattern(0, (int) MIB, 1, Durability.BUFFERED);
            CacheHarness.await(harness.cache.writeZeroesAsync(SECTOR, 2 * SECTOR, Durability.BUFFERED));
            harness.writePattern(2 * SECTOR, SECTOR, 2, Durability.BUFFERED);
            CacheHarness.await(harness.cache.discardAsync(MIB - SECTOR, SECTOR));

            harness.cache.drain();

            assertThat(recording.ops()).containsExactly("write 0+512", "write-zeroes 512+512", "write 1024+512",
                    "write 1536+1046528", "discard 1048064+512");
        }
    }

    @Test
    void aBackingDeviceThatCannotDiscardGetsNothingForADiscard() throws IOException {
        RecordingEngine recording = new RecordingEngine(new MemoryEngine(BACKING_SIZE)) {
            @Override
            public boolean supportsDiscard() {
                return false;
            }
        };
        try (CacheHarness harness = CacheHarness.mapped(recording, CacheHarness.quietOptions())) {
            CacheHarness.await(harness.cache.discardAsync(0, 8 * MIB));
            harness.cache.drain();
            assertThat(recording.ops()).isEmpty();
            assertRange(harness, 0, 8 * MIB, SectorPattern.ZERO, "discarded");
        }
    }

    @Test
    void invalidationDropsTheRangeAtOnceAndAfterReplayAndWritesNothingBack() throws Exception {
        RecordingEngine recording = new RecordingEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID));
        try (CacheHarness harness = CacheHarness.mapped(recording, CacheHarness.quietOptions())) {
            harness.writePattern(0, (int) (2 * MIB), 1, Durability.BUFFERED);
            CacheHarness.await(harness.cache.invalidateAsync(MIB / 2, MIB, Durability.BUFFERED));
            long[] model = model(2 * MIB, 1);
            fill(model, MIB / 2, MIB + MIB / 2, BACKING_ID);

            assertThat(harness.readIds(0, (int) (2 * MIB))).as("live").containsExactly(model);
            harness.awaitMissFills();
            harness.cache.flush();
            harness.reopen();
            assertThat(harness.readIds(0, (int) (2 * MIB))).as("replayed").containsExactly(model);
            harness.awaitMissFills();
            harness.cache.drain();
            assertThat(recording.ops()).as("only the data outside the invalidated range")
                    .containsExactly("write 0+524288", "write 1572864+524288");
        }
    }

    @Test
    void gcTakesReclaimedZeroAndDiscardKeysOutOfTheIndex() throws IOException {
        IoEngine keepsData = new FilterEngine(CacheHarness.patternedMemory(BACKING_SIZE, BACKING_ID)) {
            @Override
            public boolean supportsDiscard() {
                return false;
            }
        };
        try (CacheHarness harness = CacheHarness.mapped(keepsData, CacheHarness.quietOptions())) {
            CacheHarness.await(harness.cache.discardAsync(0, 8 * MIB));
            CacheHarness.await(harness.cache.writeZeroesAsync(8 * MIB, MIB, Durability.BUFFERED));
            assertRange(harness, 0, 8 * MIB, SectorPattern.ZERO, "discarded, before GC");

            harness.cache.setGcPercent(0);
            harness.cache.drain();
            harness.awaitStatus("key_tail == key_head", status -> status.keyTail().equals(status.keyHead()));

            assertRange(harness, 0, 8 * MIB, BACKING_ID, "discarded on a device that keeps the data, after GC");
            assertRange(harness, 8 * MIB, 9 * MIB, SectorPattern.ZERO, "zeroed on the backing device, after GC");
        }
    }

    @Test
    void gcKeepsADatalessKeyOfALaterKsetOverTheSameRange() throws IOException {
        FaultEngine keepsData = new FaultEngine(new FilterEngine(CacheHarness.patternedMemory(BACKING_SIZE,
                BACKING_ID)) {
            @Override
            public boolean supportsDiscard() {
                return false;
            }
        });
        try (CacheHarness harness = CacheHarness.mapped(keepsData, CacheHarness.quietOptions().withKsetCount(1))) {
            CacheHarness.await(harness.cache.discardAsync(0, MIB));
            harness.cache.drain();
            keepsData.failAll(EngineOp.WRITE); // writeback stops at the next kset
            CacheHarness.await(harness.cache.discardAsync(0, MIB));
            harness.writePattern(2 * MIB, SECTOR, 1, Durability.BUFFERED);
            harness.cache.flush();
            int reclaimedBefore = (int) harness.cache.status().gc().ksetsReclaimed();

            harness.cache.setGcPercent(0);
            harness.awaitStatus("GC reached dirty_tail", status -> status.keyTail().equals(status.dirtyTail())
                    && status.gc().ksetsReclaimed() > reclaimedBefore);

            assertRange(harness, 0, MIB, SectorPattern.ZERO, "discarded again, not yet written back");
        }
    }

    @Test
    void cacheInfoIsMarkedBeforeTheFirstDatalessKeyAndStaysMarked() throws IOException {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            harness.writePattern(0, (int) MIB, 1, Durability.FUA);
            harness.readIds(4 * MIB, (int) MIB);
            assertThat(harness.cache.status().cacheFlags() & CacheInfoOnMedia.FLAG_DATALESS_KEYS)
                    .as("data keys only").isZero();

            CacheHarness.await(harness.cache.writeZeroesAsync(0, SECTOR, Durability.FUA));
            assertThat(harness.cache.status().cacheFlags() & CacheInfoOnMedia.FLAG_DATALESS_KEYS)
                    .as("after a write-zeroes").isNotZero();

            harness.cache.setGcPercent(30);
            assertThat(harness.reopen().status().cacheFlags() & CacheInfoOnMedia.FLAG_DATALESS_KEYS)
                    .as("after a gc_percent change and a reopen").isNotZero();
        }
    }

    private static void assertRange(CacheHarness harness, long from, long to, long id, String what)
            throws IOException {
        for (long off = from; off < to; off += 4 * MIB) {
            int len = (int) Math.min(4 * MIB, to - off);
            assertThat(harness.readIds(off, len)).as(what + " at " + off).containsOnly(id);
        }
    }

    private static long[] model(long length, long id) {
        long[] model = new long[(int) (length / SECTOR)];
        Arrays.fill(model, id);
        return model;
    }

    private static void fill(long[] model, long from, long to, long id) {
        Arrays.fill(model, (int) (from / SECTOR), (int) (to / SECTOR), id);
    }

    /** Records the writes, write-zeroes and discards that reach the store, in order. */
    private static class RecordingEngine extends FilterEngine {
        private final List<String> ops = Collections.synchronizedList(new ArrayList<>());

        RecordingEngine(IoEngine next) {
            super(next);
        }

        List<String> ops() {
            synchronized (ops) {
                return List.copyOf(ops);
            }
        }

        @Override
        public void write(long offset, MemorySegment src, IoCallback done) {
            ops.add("write " + offset + "+" + src.byteSize());
            super.write(offset, src, done);
        }

        @Override
        public void discard(long offset, long length, IoCallback done) {
            ops.add("discard " + offset + "+" + length);
            super.discard(offset, length, done);
        }

        @Override
        public void writeZeroes(long offset, long length, IoCallback done) {
            ops.add("write-zeroes " + offset + "+" + length);
            super.writeZeroes(offset, length, done);
        }
    }
}
