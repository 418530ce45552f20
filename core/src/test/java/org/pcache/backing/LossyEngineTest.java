package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class LossyEngineTest {

    private static final int SECTOR = LossyEngine.SECTOR_SIZE;
    private static final int SEEDS = 64;

    @Test
    void writesAreVisibleAtOnceButNotDurableBeforeAFlush() throws Exception {
        LossyEngine lossy = new LossyEngine(new MemoryEngine(16 * SECTOR));
        BlockingIo.write(lossy, SECTOR, filled(2 * SECTOR, (byte) 7));
        assertThat(read(lossy, SECTOR, 2 * SECTOR)).containsOnly((byte) 7);
        assertThat(lossy.durable(SECTOR, 2 * SECTOR)).containsOnly((byte) 0);
        assertThat(lossy.unflushedWrites()).isEqualTo(1);
    }

    @Test
    void flushedWritesSurviveEveryCrash() throws Exception {
        for (long seed = 0; seed < SEEDS; seed++) {
            LossyEngine lossy = new LossyEngine(new MemoryEngine(16 * SECTOR));
            BlockingIo.write(lossy, 0, filled(4 * SECTOR, (byte) 1));
            BlockingIo.flush(lossy);
            assertThat(lossy.durable(0, 4 * SECTOR)).containsOnly((byte) 1);
            lossy.crash(seed);
            assertThat(read(lossy, 0, 4 * SECTOR)).as("seed %d", seed).containsOnly((byte) 1);
        }
    }

    @Test
    void unflushedWritesAreKeptDroppedOrTornPerSectorAcrossSeeds() throws Exception {
        Set<String> outcomes = new HashSet<>();
        for (long seed = 0; seed < SEEDS; seed++) {
            LossyEngine lossy = new LossyEngine(new MemoryEngine(16 * SECTOR));
            BlockingIo.write(lossy, 2 * SECTOR, filled(8 * SECTOR, (byte) 9));
            LossyEngine.Crash crash = lossy.crash(seed);
            byte[] after = read(lossy, 2 * SECTOR, 8 * SECTOR);
            assertThat(after).as("the crash image is what reads see (seed %d)", seed)
                    .isEqualTo(lossy.durable(2 * SECTOR, 8 * SECTOR));
            int keptSectors = 0;
            for (int sector = 0; sector < 8; sector++) {
                byte[] bytes = Arrays.copyOfRange(after, sector * SECTOR, (sector + 1) * SECTOR);
                assertThat(bytes).as("sector %d is whole, old or new (seed %d)", sector, seed)
                        .containsOnly(bytes[0]);
                assertThat(bytes[0]).isIn((byte) 0, (byte) 9);
                keptSectors += bytes[0] == 9 ? 1 : 0;
            }
            if (crash.kept() == 1) {
                assertThat(keptSectors).as("kept write (seed %d)", seed).isEqualTo(8);
            } else if (crash.dropped() == 1) {
                assertThat(keptSectors).as("dropped write (seed %d)", seed).isZero();
            }
            outcomes.add(keptSectors == 8 ? "kept" : keptSectors == 0 ? "dropped" : "torn");
            assertThat(lossy.unflushedWrites()).isZero();
        }
        assertThat(outcomes).as("over %d seeds", SEEDS).containsExactlyInAnyOrder("kept", "dropped", "torn");
    }

    @Test
    void aKeptLaterWriteAlwaysWinsOverAnEarlierOneToTheSameSector() throws Exception {
        Set<Byte> outcomes = new HashSet<>();
        int bothKept = 0;
        for (long seed = 0; seed < SEEDS; seed++) {
            LossyEngine lossy = new LossyEngine(new MemoryEngine(4 * SECTOR));
            BlockingIo.write(lossy, 0, filled(SECTOR, (byte) 1));
            BlockingIo.write(lossy, 0, filled(SECTOR, (byte) 2));
            LossyEngine.Crash crash = lossy.crash(seed);
            byte[] sector = read(lossy, 0, SECTOR);
            assertThat(sector).as("one version, whole (seed %d)", seed).containsOnly(sector[0]);
            outcomes.add(sector[0]);
            if (crash.kept() == 2) {
                bothKept++;
                assertThat(sector[0]).as("both kept: the later one wins (seed %d)", seed).isEqualTo((byte) 2);
            }
            if (crash.dropped() == 2) {
                assertThat(sector[0]).as("both dropped: the old data (seed %d)", seed).isZero();
            }
        }
        assertThat(bothKept).as("some seed keeps both writes").isPositive();
        assertThat(outcomes).as("old, earlier and later version all occur").containsExactlyInAnyOrder((byte) 0,
                (byte) 1, (byte) 2);
    }

    @Test
    void aFlushCoversOnlyWritesCompletedBeforeItWasCalled() throws Exception {
        LatencyEngine slowFlush = new LatencyEngine(new MemoryEngine(8 * SECTOR))
                .delay(EngineOp.FLUSH, Duration.ofMillis(20));
        LossyEngine lossy = new LossyEngine(slowFlush);
        BlockingIo.write(lossy, 0, filled(SECTOR, (byte) 1));
        CompletableFuture<Exception> flushed = new CompletableFuture<>();
        lossy.flush(flushed::complete);
        BlockingIo.write(lossy, SECTOR, filled(SECTOR, (byte) 2));
        assertThat(flushed.get(10, TimeUnit.SECONDS)).isNull();
        assertThat(lossy.durable(0, SECTOR)).containsOnly((byte) 1);
        assertThat(lossy.durable(SECTOR, SECTOR)).as("completed after the flush was called").containsOnly((byte) 0);
        assertThat(lossy.unflushedWrites()).isEqualTo(1);
        slowFlush.close();
    }

    @Test
    void aFailedFlushMakesNothingDurable() throws Exception {
        FaultEngine faults = new FaultEngine(new MemoryEngine(8 * SECTOR)).failNth(EngineOp.FLUSH, 1);
        LossyEngine lossy = new LossyEngine(faults);
        BlockingIo.write(lossy, 0, filled(SECTOR, (byte) 1));
        assertThatThrownBy(() -> BlockingIo.flush(lossy)).isInstanceOf(BackingIoException.class);
        assertThat(lossy.durable(0, SECTOR)).containsOnly((byte) 0);
        BlockingIo.flush(lossy);
        assertThat(lossy.durable(0, SECTOR)).containsOnly((byte) 1);
    }

    @Test
    void crashWithAnOperationInFlightIsRefused() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(8 * SECTOR), 1);
        gate.open();
        LossyEngine lossy = new LossyEngine(gate);
        gate.shut();
        CompletableFuture<Exception> written = new CompletableFuture<>();
        lossy.write(0, filled(SECTOR, (byte) 1), written::complete);
        assertThat(gate.awaitHeld(10, TimeUnit.SECONDS)).isTrue();
        assertThatThrownBy(() -> lossy.crash(1)).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("in flight");
        gate.open();
        assertThat(written.get(10, TimeUnit.SECONDS)).isNull();
        lossy.crash(1);
    }

    private static MemorySegment filled(int length, byte value) {
        byte[] bytes = new byte[length];
        Arrays.fill(bytes, value);
        return MemorySegment.ofArray(bytes);
    }

    private static byte[] read(IoEngine engine, long offset, int length) throws Exception {
        MemorySegment target = MemorySegment.ofArray(new byte[length]);
        BlockingIo.read(engine, offset, target);
        return target.toArray(ValueLayout.JAVA_BYTE);
    }
}
