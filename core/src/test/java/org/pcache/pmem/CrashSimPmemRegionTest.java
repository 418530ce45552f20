package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class CrashSimPmemRegionTest {
    private static final int LINE = PmemRegion.LINE_SIZE;

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(1024 * 1024);

    @AfterEach
    void closeRegion() {
        region.close();
    }

    private static byte[] filled(int length, int value) {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, (byte) value);
        return bytes;
    }

    private void store(CrashSimPmemRegion target, long offset, byte[] bytes) {
        target.write(offset, MemorySegment.ofArray(bytes), 0, bytes.length);
    }

    @Test
    void freshRegionIsZeroAndDurable() {
        assertThat(region.volatileBytes(0, 256)).containsOnly(0);
        assertThat(region.pendingLineCount()).isZero();
        assertThat(region.mode()).isEqualTo(PersistenceMode.SIMULATED);
    }

    @Test
    void persistedLinesSurviveEveryPowerCut() {
        for (long seed = 0; seed < 50; seed++) {
            store(region, 4096, filled(3 * LINE, (int) seed + 1));
            region.persist(4096, 3 * LINE);

            region.powerCut(seed);

            assertThat(region.volatileBytes(4096, 3 * LINE)).as("seed %d", seed).containsOnly((int) seed + 1);
        }
    }

    @Test
    void unflushedLineIsKeptForSomeSeedsAndLostForOthers() {
        Set<Integer> outcomes = new HashSet<>();
        for (long seed = 0; seed < 60; seed++) {
            store(region, 0, filled(LINE, 0x11));
            region.persist(0, LINE);
            store(region, 0, filled(LINE, 0x22));

            region.powerCut(seed);

            byte[] line = region.volatileBytes(0, LINE);
            if (line[0] == line[LINE - 1] && line[0] == line[LINE / 2]) {
                outcomes.add((int) line[0]);
            }
        }
        assertThat(outcomes).containsExactlyInAnyOrder(0x11, 0x22);
    }

    @Test
    void flushWithoutDrainIsNotDurable() {
        boolean lost = false;
        for (long seed = 0; seed < 60 && !lost; seed++) {
            store(region, 0, filled(LINE, 0x33));
            region.flush(0, LINE);

            region.powerCut(seed);

            lost = region.volatileBytes(0, LINE)[0] == 0;
            region.zero(0, LINE);
            region.persist(0, LINE);
        }
        assertThat(lost).isTrue();
    }

    @Test
    void zeroingZeroLinesPutsNothingAtRisk() {
        region.zero(0, 4096);

        assertThat(region.pendingLineCount()).isZero();
        assertThat(region.storeCount()).isEqualTo(1);
    }

    @Test
    void zeroingStoredLinesPutsThemAtRisk() {
        Set<Integer> outcomes = new HashSet<>();
        for (long seed = 0; seed < 60; seed++) {
            store(region, 0, filled(LINE, 0x0C));
            region.persist(0, LINE);
            region.zero(0, LINE);
            assertThat(region.pendingLineCount()).isEqualTo(1);

            region.powerCut(seed);

            outcomes.add((int) region.volatileBytes(0, LINE)[LINE - 1]);
        }
        assertThat(outcomes).containsExactlyInAnyOrder(0, 0x0C);
    }

    @Test
    void drainMakesDurableWhatAnotherThreadFlushed() throws Exception {
        CompletableFuture.runAsync(() -> {
            store(region, 8192, filled(LINE, 0x44));
            region.flush(8192, LINE);
        }).get(10, TimeUnit.SECONDS);

        region.drain();

        assertThat(region.durableBytes(8192, LINE)).containsOnly(0x44);
        assertThat(region.pendingLineCount()).isZero();
        for (long seed = 0; seed < 20; seed++) {
            region.powerCut(seed);
            assertThat(region.volatileBytes(8192, LINE)).as("seed %d", seed).containsOnly(0x44);
        }
    }

    @Test
    void drainPersistsTheContentCapturedByTheFlushNotLaterStores() {
        store(region, 0, filled(LINE, 0x01));
        region.flush(0, LINE);
        store(region, 0, filled(LINE, 0x02));

        region.drain();

        assertThat(region.durableBytes(0, LINE)).containsOnly(0x01);
        assertThat(region.volatileBytes(0, LINE)).containsOnly(0x02);
        assertThat(region.pendingLineCount()).isEqualTo(1);
    }

    @Test
    void powerCutNeverResurrectsContentOlderThanTheDurableOne() {
        for (long seed = 0; seed < 60; seed++) {
            store(region, 0, filled(LINE, 0x01));
            region.flush(0, LINE);
            store(region, 0, filled(LINE, 0x02));
            region.drain();

            region.powerCut(seed);

            byte[] line = region.volatileBytes(0, LINE);
            for (byte value : line) {
                assertThat(value).as("seed %d", seed).isIn((byte) 0x01, (byte) 0x02);
            }
        }
    }

    @Test
    void tearingHappensAtEightByteWordsForSomeSeed() {
        boolean torn = false;
        for (long seed = 0; seed < 100; seed++) {
            region.zero(0, LINE);
            region.persist(0, LINE);
            store(region, 0, filled(LINE, 0xFF));

            region.powerCut(seed);

            byte[] line = region.volatileBytes(0, LINE);
            int newWords = 0;
            for (int word = 0; word < LINE / Long.BYTES; word++) {
                byte[] bytes = Arrays.copyOfRange(line, word * Long.BYTES, (word + 1) * Long.BYTES);
                assertThat(bytes).as("seed %d word %d is whole", seed, word)
                        .satisfiesAnyOf(b -> assertThat(b).containsOnly(0), b -> assertThat(b).containsOnly(-1));
                newWords += bytes[0] == -1 ? 1 : 0;
            }
            torn |= newWords > 0 && newWords < LINE / Long.BYTES;
        }
        assertThat(torn).isTrue();
    }

    @Test
    void orderedLongStoreIsNeverTorn() {
        for (long seed = 0; seed < 60; seed++) {
            region.putLongRelease(128, 0x1111111111111111L);
            region.persist(128, Long.BYTES);
            region.putLongRelease(128, 0x2222222222222222L);

            region.powerCut(seed);

            assertThat(region.getLongAcquire(128)).as("seed %d", seed)
                    .isIn(0x1111111111111111L, 0x2222222222222222L);
        }
    }

    @Test
    void frozenStateIgnoresLaterStoresFlushesAndDrains() {
        replayFreezeScenario(region);

        assertThat(region.frozen()).isTrue();
        assertThat(region.durableBytes(0, LINE)).containsOnly(0x02);
        assertThat(region.durableBytes(4096, LINE)).containsOnly(0);
        for (long seed = 0; seed < 30; seed++) {
            try (CrashSimPmemRegion copy = new CrashSimPmemRegion(64 * 1024)) {
                replayFreezeScenario(copy);
                copy.powerCut(seed);
                assertThat(copy.volatileBytes(0, LINE)).as("seed %d", seed).containsOnly(0x02);
                assertThat(copy.volatileBytes(4096, LINE)).as("seed %d", seed).containsOnly(0);
            }
        }
    }

    private void replayFreezeScenario(CrashSimPmemRegion target) {
        store(target, 0, filled(LINE, 0x01));
        target.persist(0, LINE);
        target.freezeAtDrain(target.drainCount() + 1);
        store(target, 0, filled(LINE, 0x02));
        target.persist(0, LINE);
        store(target, 0, filled(LINE, 0x03));
        store(target, 4096, filled(LINE, 0x04));
        target.persist(0, 8192);
    }

    @Test
    void linesNotDurableAtTheFreezeKeepTheirContentOfThatMoment() {
        Set<Integer> outcomes = new HashSet<>();
        for (long seed = 0; seed < 60; seed++) {
            try (CrashSimPmemRegion target = new CrashSimPmemRegion(64 * 1024)) {
                store(target, 0, filled(LINE, 0x05));
                target.freezeAtDrain(target.drainCount());
                store(target, 0, filled(LINE, 0x06));
                target.persist(0, LINE);

                target.powerCut(seed);

                byte[] line = target.volatileBytes(0, LINE);
                for (byte value : line) {
                    assertThat(value).as("seed %d", seed).isIn((byte) 0, (byte) 0x05);
                }
                outcomes.add((int) line[0]);
            }
        }
        assertThat(outcomes).contains(0, 0x05);
    }

    @Test
    void freezeBeforeADrainLeavesItsFlushedStoresAtRisk() {
        Set<Integer> outcomes = new HashSet<>();
        for (long seed = 0; seed < 60; seed++) {
            try (CrashSimPmemRegion target = new CrashSimPmemRegion(64 * 1024)) {
                store(target, 0, filled(LINE, 0x0A));
                target.persist(0, LINE);
                target.freezeBeforeDrain(target.drainCount() + 1);
                store(target, 0, filled(LINE, 0x0B));
                target.persist(0, LINE);
                assertThat(target.frozen()).isTrue();

                target.powerCut(seed);

                byte[] line = target.volatileBytes(0, LINE);
                for (byte value : line) {
                    assertThat(value).as("seed %d", seed).isIn((byte) 0x0A, (byte) 0x0B);
                }
                outcomes.add((int) line[0]);
            }
        }
        assertThat(outcomes).contains(0x0A, 0x0B);
    }

    @Test
    void freezingBeforeADrainAlreadyCalledIsRefused() {
        region.drain();

        assertThatThrownBy(() -> region.freezeBeforeDrain(1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void freezeWaitsForItsDrain() {
        region.freezeAtDrain(region.drainCount() + 2);
        region.drain();
        assertThat(region.frozen()).isFalse();

        region.drain();

        assertThat(region.frozen()).isTrue();
    }

    @Test
    void freezingAtAPastDrainIsRefused() {
        region.drain();
        region.drain();

        assertThatThrownBy(() -> region.freezeAtDrain(1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void powerCutIsDeterministicForASeed() {
        try (CrashSimPmemRegion other = new CrashSimPmemRegion(1024 * 1024)) {
            for (CrashSimPmemRegion target : new CrashSimPmemRegion[] {region, other}) {
                for (int i = 0; i < 40; i++) {
                    store(target, i * 1000L, filled(300, i + 1));
                }
                target.flush(0, 20_000);
                target.powerCut(1234);
            }

            assertThat(region.volatileBytes(0, 40_000)).isEqualTo(other.volatileBytes(0, 40_000));
        }
    }

    @Test
    void powerCutLeavesAConsistentUsableRegion() {
        store(region, 0, filled(4 * LINE, 0x07));
        region.freezeAtDrain(region.drainCount());

        region.powerCut(9);

        assertThat(region.frozen()).isFalse();
        assertThat(region.pendingLineCount()).isZero();
        assertThat(region.durableBytes(0, 4 * LINE)).isEqualTo(region.volatileBytes(0, 4 * LINE));
        store(region, 0, filled(LINE, 0x08));
        region.persist(0, LINE);
        assertThat(region.durableBytes(0, LINE)).containsOnly(0x08);
    }

    @Test
    void countersTrackStoresFlushesAndDrains() {
        store(region, 0, filled(8, 1));
        region.zero(64, 8);
        region.putLongRelease(128, 5);
        region.flush(0, 192);
        region.drain();
        region.read(0, MemorySegment.ofArray(new byte[8]), 0, 8);

        assertThat(region.storeCount()).isEqualTo(3);
        assertThat(region.flushCount()).isEqualTo(1);
        assertThat(region.drainCount()).isEqualTo(1);
    }

    @Test
    void halfGibRegionSurvivesHundredsOfCuts() {
        try (CrashSimPmemRegion large = new CrashSimPmemRegion(512L * 1024 * 1024)) {
            long last = large.size() - 4096;
            for (long seed = 0; seed < 300; seed++) {
                store(large, last, filled(4096, (int) seed));
                large.persist(last, 4096);
                store(large, 4096, filled(4096, (int) seed));

                large.powerCut(seed);

                assertThat(large.volatileBytes(last, 1)[0]).isEqualTo((byte) seed);
            }
        }
    }

    @Test
    void orderedAccessMustBeAligned() {
        assertThatThrownBy(() -> region.getLongAcquire(4)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("aligned");
        assertThatThrownBy(() -> region.putLongRelease(12, 1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void accessOutsideTheRegionIsRejected() {
        assertThatThrownBy(() -> region.write(region.size() - 4, MemorySegment.ofArray(new byte[8]), 0, 8))
                .isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> region.flush(region.size(), 1)).isInstanceOf(IndexOutOfBoundsException.class);
    }

    @Test
    void viewIsReadOnlyAndFollowsStores() {
        MemorySegment view = region.view(0, LINE);
        store(region, 0, filled(LINE, 0x09));

        assertThat(view.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 10)).isEqualTo((byte) 0x09);
        assertThat(view.isReadOnly()).isTrue();
    }
}
