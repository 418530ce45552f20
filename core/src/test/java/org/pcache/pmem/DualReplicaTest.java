package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class DualReplicaTest {
    private static final long BASE = 8192;
    private static final long SIZE = SegmentGenOnMedia.SIZE;

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(64 * 1024);

    @AfterEach
    void closeRegion() {
        region.close();
    }

    private DualReplica adjacentGens() {
        return new DualReplica(region, BASE, SIZE, SegmentGenOnMedia.SLOT_STRIDE);
    }

    private static MemorySegment gen(long value) {
        MemorySegment staging = MemorySegment.ofArray(new byte[(int) SIZE]);
        new SegmentGenOnMedia().wrap(staging).gen(value);
        return staging;
    }

    /** Stores a valid gen record with {@code seq} directly into {@code slot}, bypassing DualReplica. */
    private void storeSlot(int slot, int seq, long value) {
        MemorySegment record = gen(value);
        MetaHeader.seq(record, seq);
        MetaHeader.seal(record, SIZE);
        region.write(BASE + slot * SegmentGenOnMedia.SLOT_STRIDE, record, 0, SIZE);
    }

    private static long loadedGen(DualReplica replica) {
        MemorySegment staging = MemorySegment.ofArray(new byte[(int) SIZE]);
        assertThat(replica.loadLatest(staging)).isTrue();
        return new SegmentGenOnMedia().wrap(staging).gen();
    }

    @Test
    void noValidSlotLoadsNothingAndZeroesTheStaging() {
        MemorySegment staging = MemorySegment.ofArray(new byte[(int) SIZE]);
        staging.fill((byte) 0x5A);
        DualReplica replica = adjacentGens();

        assertThat(replica.loadLatest(staging)).isFalse();
        assertThat(staging.toArray(ValueLayout.JAVA_BYTE)).containsOnly(0);
        assertThat(replica.latestSlot()).isZero();
        assertThat(replica.latestSeq()).isZero();
    }

    @Test
    void firstWriteOfANewRecordGoesToSlotOneWithSeqOne() {
        DualReplica replica = adjacentGens();
        replica.loadLatest(MemorySegment.ofArray(new byte[(int) SIZE]));

        replica.writeNext(gen(42));

        assertThat(replica.latestSlot()).isEqualTo(1);
        assertThat(replica.latestSeq()).isEqualTo(1);
        assertThat(region.volatileBytes(BASE, (int) SIZE)).containsOnly(0);
        assertThat(loadedGen(adjacentGens())).isEqualTo(42);
    }

    @Test
    void writesAlternateSlotsAndBumpSeq() {
        DualReplica replica = adjacentGens();
        for (int round = 1; round <= 5; round++) {
            replica.writeNext(gen(round));

            assertThat(replica.latestSlot()).isEqualTo(round % 2);
            assertThat(replica.latestSeq()).isEqualTo(round);
            DualReplica reloaded = adjacentGens();
            assertThat(loadedGen(reloaded)).isEqualTo(round);
            assertThat(reloaded.latestSlot()).isEqualTo(round % 2);
        }
    }

    @Test
    void newerSeqWinsInEitherSlot() {
        storeSlot(0, 9, 900);
        storeSlot(1, 8, 800);
        assertThat(loadedGen(adjacentGens())).isEqualTo(900);

        storeSlot(1, 10, 1000);
        assertThat(loadedGen(adjacentGens())).isEqualTo(1000);
    }

    @Test
    void slotWithBadCrcIsSkipped() {
        storeSlot(0, 4, 400);
        storeSlot(1, 5, 500);
        region.write(BASE + SegmentGenOnMedia.SLOT_STRIDE + SegmentGenOnMedia.GEN_OFFSET,
                MemorySegment.ofArray(new byte[] {1}), 0, 1);

        DualReplica replica = adjacentGens();

        assertThat(loadedGen(replica)).isEqualTo(400);
        assertThat(replica.latestSlot()).isZero();
    }

    @Test
    void equalSeqsPickSlotZero() {
        storeSlot(0, 6, 600);
        storeSlot(1, 6, 601);

        DualReplica replica = adjacentGens();

        assertThat(loadedGen(replica)).isEqualTo(600);
        assertThat(replica.latestSlot()).isZero();
    }

    @Test
    void seqZeroIsNewerThanSeq255AcrossTheWrap() {
        storeSlot(0, 255, 255);
        storeSlot(1, 0, 256);
        assertThat(loadedGen(adjacentGens())).isEqualTo(256);

        storeSlot(0, 1, 257);
        assertThat(loadedGen(adjacentGens())).isEqualTo(257);
    }

    @Test
    void seq255IsOlderThanSeq0WhenItIsInSlotOne() {
        storeSlot(0, 0, 256);
        storeSlot(1, 255, 255);

        assertThat(loadedGen(adjacentGens())).isEqualTo(256);
    }

    @Test
    void seqAfterComparesEightBitsWithWrapAround() {
        assertThat(DualReplica.seqAfter(1, 0)).isTrue();
        assertThat(DualReplica.seqAfter(0, 255)).isTrue();
        assertThat(DualReplica.seqAfter(255, 0)).isFalse();
        assertThat(DualReplica.seqAfter(127, 0)).isTrue();
        assertThat(DualReplica.seqAfter(128, 0)).isFalse();
        assertThat(DualReplica.seqAfter(7, 7)).isFalse();
    }

    @Test
    void writeAfterSeq255WrapsToZeroInTheOtherSlot() {
        storeSlot(1, 255, 255);
        DualReplica replica = adjacentGens();
        loadedGen(replica);

        replica.writeNext(gen(256));

        assertThat(replica.latestSlot()).isZero();
        assertThat(replica.latestSeq()).isZero();
        assertThat(loadedGen(adjacentGens())).isEqualTo(256);
    }

    @Test
    void writeNeverTouchesTheSlotOfTheNewestCopy() {
        storeSlot(0, 3, 300);
        storeSlot(1, 2, 200);
        DualReplica replica = adjacentGens();
        loadedGen(replica);
        byte[] newest = region.volatileBytes(BASE, (int) SIZE);

        replica.writeNext(gen(400));

        assertThat(region.volatileBytes(BASE, (int) SIZE)).isEqualTo(newest);
        assertThat(replica.latestSlot()).isEqualTo(1);
        assertThat(replica.latestSeq()).isEqualTo(4);
    }

    @Test
    void slotStrideIsSeparateFromRecordSize() {
        DualReplica replica = new DualReplica(region, BASE, CacheInfoOnMedia.SIZE, CacheInfoOnMedia.SLOT_STRIDE);
        MemorySegment staging = MemorySegment.ofArray(new byte[(int) CacheInfoOnMedia.SIZE]);
        new CacheInfoOnMedia().wrap(staging).encode(new CacheInfo(1, 2, false, true, 0, 70, 0));

        replica.writeNext(staging);

        assertThat(replica.slotOffset(1)).isEqualTo(BASE + 4096);
        assertThat(region.volatileBytes(BASE + 4096, (int) CacheInfoOnMedia.SIZE))
                .isEqualTo(staging.toArray(ValueLayout.JAVA_BYTE));
        assertThat(region.volatileBytes(BASE + CacheInfoOnMedia.SIZE, 64)).containsOnly(0);
    }

    @Test
    void writeNextIsDurableOnReturn() {
        DualReplica replica = adjacentGens();

        replica.writeNext(gen(77));

        assertThat(region.pendingLineCount()).isZero();
        assertThat(region.durableBytes(BASE, 64)).isEqualTo(region.volatileBytes(BASE, 64));
    }

    @Test
    void rule3PowerCutDuringWriteNextLeavesTheOldOrTheNewRecord() {
        Set<Long> outcomes = new HashSet<>();
        for (long seed = 0; seed < 200; seed++) {
            region.zero(BASE, 2 * SIZE);
            storeSlot(0, 10, 1000);
            region.persist(BASE, 2 * SIZE);
            DualReplica replica = adjacentGens();
            loadedGen(replica);
            region.freezeBeforeDrain(region.drainCount() + 1);

            replica.writeNext(gen(1100));
            region.powerCut(seed);

            long found = loadedGen(adjacentGens());
            assertThat(found).as("seed %d", seed).isIn(1000L, 1100L);
            outcomes.add(found);
        }
        assertThat(outcomes).containsExactlyInAnyOrder(1000L, 1100L);
    }
}
