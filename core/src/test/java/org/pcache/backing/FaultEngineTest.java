package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FaultEngineTest {

    private static final int BLOCK = 512;

    @Test
    void failNthFailsExactlyThatOperationOfItsKindOnceAndLeavesTheStoreUntouched() throws Exception {
        MemoryEngine memory = new MemoryEngine(16 * BLOCK);
        FaultEngine faults = new FaultEngine(memory).failNth(EngineOp.WRITE, 3);
        List<Integer> failedWrites = new ArrayList<>();
        for (int i = 1; i <= 6; i++) {
            long offset = (long) i * BLOCK;
            if (!succeeds(() -> BlockingIo.write(faults, offset, filled((byte) 0x5a)))) {
                failedWrites.add(i);
            }
            assertThat(succeeds(() -> BlockingIo.read(faults, 0, MemorySegment.ofArray(new byte[BLOCK])))).isTrue();
        }
        assertThat(failedWrites).containsExactly(3);
        assertThat(faults.failed(EngineOp.WRITE)).isEqualTo(1);
        assertThat(faults.seen(EngineOp.WRITE)).isEqualTo(6);
        assertThat(faults.failed(EngineOp.READ)).isZero();
        MemorySegment third = MemorySegment.ofArray(new byte[BLOCK]);
        BlockingIo.read(memory, 3 * BLOCK, third);
        assertThat(third.toArray(ValueLayout.JAVA_BYTE)).as("the failed write never reached the store")
                .containsOnly((byte) 0);
    }

    @Test
    void discardAndWriteZeroesFaultPerKindAndOtherwisePassToTheStore() throws Exception {
        MemoryEngine memory = new MemoryEngine(4 * BLOCK);
        FaultEngine faults = new FaultEngine(memory).failNth(EngineOp.DISCARD, 1).failNth(EngineOp.WRITE_ZEROES, 1);
        BlockingIo.write(faults, 0, MemorySegment.ofArray(new byte[4 * BLOCK]).fill((byte) 0x5a));
        assertThatThrownBy(() -> BlockingIo.discard(faults, 0, BLOCK)).isInstanceOfSatisfying(
                BackingIoException.class, error -> assertThat(error).hasMessageContaining("discard offset=0"));
        assertThatThrownBy(() -> BlockingIo.writeZeroes(faults, BLOCK, BLOCK)).isInstanceOfSatisfying(
                BackingIoException.class, error -> assertThat(error).hasMessageContaining("write-zeroes offset=512"));
        byte[] untouched = new byte[2 * BLOCK];
        BlockingIo.read(memory, 0, MemorySegment.ofArray(untouched));
        assertThat(untouched).as("failed operations never reached the store").containsOnly((byte) 0x5a);

        BlockingIo.discard(faults, 0, BLOCK);
        BlockingIo.writeZeroes(faults, BLOCK, BLOCK);
        byte[] zeroed = new byte[2 * BLOCK];
        BlockingIo.read(memory, 0, MemorySegment.ofArray(zeroed));
        assertThat(zeroed).containsOnly((byte) 0);
        assertThat(faults.seen(EngineOp.DISCARD)).isEqualTo(2);
        assertThat(faults.failed(EngineOp.WRITE_ZEROES)).isEqualTo(1);
        assertThat(faults.supportsDiscard()).isTrue();
        assertThat(faults.supportsWriteZeroes()).isTrue();
    }

    @Test
    void failPercentIsDeterministicForASeedAndCloseToTheRate() throws Exception {
        long seed = 0xfa17L;
        List<Integer> first = failingReads(seed, 30, 1000);
        List<Integer> second = failingReads(seed, 30, 1000);
        assertThat(first).as("same seed %x, same faults", seed).isEqualTo(second);
        assertThat(first.size()).as("faults out of 1000 at 30%% (seed %x)", seed).isBetween(240, 360);
        assertThat(failingReads(seed + 1, 30, 1000)).as("another seed, other faults").isNotEqualTo(first);
    }

    @Test
    void faultsSwitchOffAtRunTime() throws Exception {
        FaultEngine faults = new FaultEngine(new MemoryEngine(8 * BLOCK))
                .failAll(EngineOp.WRITE)
                .failAll(EngineOp.FLUSH);
        assertThat(succeeds(() -> BlockingIo.write(faults, 0, filled((byte) 1)))).isFalse();
        assertThat(succeeds(() -> BlockingIo.flush(faults))).isFalse();
        faults.clear(EngineOp.WRITE);
        assertThat(succeeds(() -> BlockingIo.write(faults, 0, filled((byte) 1)))).isTrue();
        assertThat(succeeds(() -> BlockingIo.flush(faults))).isFalse();
        faults.clear();
        assertThat(succeeds(() -> BlockingIo.flush(faults))).isTrue();
        assertThat(faults.failed(EngineOp.WRITE)).isEqualTo(1);
        assertThat(faults.failed(EngineOp.FLUSH)).isEqualTo(2);
    }

    @Test
    void injectedFaultsAreTypedIoErrorsThatNameTheOperation() {
        FaultEngine faults = new FaultEngine(new MemoryEngine(8 * BLOCK)).failNth(EngineOp.READ, 1);
        BackingIoException error = null;
        try {
            BlockingIo.read(faults, 2 * BLOCK, MemorySegment.ofArray(new byte[BLOCK]));
        } catch (IOException e) {
            error = (BackingIoException) e;
        }
        assertThat(error).isNotNull();
        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR);
        assertThat(error.operation()).isEqualTo("read");
        assertThat(error.offset()).isEqualTo(2 * BLOCK);
        assertThat(error.length()).isEqualTo(BLOCK);
    }

    private static List<Integer> failingReads(long seed, double percent, int reads) {
        FaultEngine faults = new FaultEngine(new MemoryEngine(BLOCK)).failPercent(EngineOp.READ, percent, seed);
        List<Integer> failing = new ArrayList<>();
        for (int i = 0; i < reads; i++) {
            if (!succeeds(() -> BlockingIo.read(faults, 0, MemorySegment.ofArray(new byte[BLOCK])))) {
                failing.add(i);
            }
        }
        assertThat(faults.failed(EngineOp.READ)).isEqualTo(failing.size());
        return failing;
    }

    private static MemorySegment filled(byte value) {
        byte[] bytes = new byte[BLOCK];
        Arrays.fill(bytes, value);
        return MemorySegment.ofArray(bytes);
    }

    @FunctionalInterface
    private interface Io {
        void run() throws IOException;
    }

    private static boolean succeeds(Io io) {
        try {
            io.run();
            return true;
        } catch (BackingIoException e) {
            return false;
        } catch (IOException e) {
            throw new AssertionError("unexpected failure", e);
        }
    }
}
