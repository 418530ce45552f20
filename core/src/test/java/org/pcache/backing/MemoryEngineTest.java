package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MemoryEngineTest {

    @Test
    void startsZeroedAndReadsBackWhatWasWritten() throws Exception {
        try (MemoryEngine engine = new MemoryEngine(4096)) {
            byte[] zeros = new byte[4096];
            BlockingIo.read(engine, 0, MemorySegment.ofArray(zeros));
            assertThat(zeros).containsOnly((byte) 0);
            BlockingIo.write(engine, 100, MemorySegment.ofArray(new byte[] {1, 2, 3}));
            MemorySegment back = MemorySegment.ofArray(new byte[5]);
            BlockingIo.read(engine, 99, back);
            assertThat(back.toArray(ValueLayout.JAVA_BYTE)).containsExactly(0, 1, 2, 3, 0);
        }
    }

    @Test
    void discardAndWriteZeroesZeroExactlyTheirRange() throws Exception {
        try (MemoryEngine engine = new MemoryEngine(4096)) {
            BlockingIo.write(engine, 0, MemorySegment.ofArray(new byte[4096]).fill((byte) 1));
            BlockingIo.discard(engine, 100, 10);
            BlockingIo.writeZeroes(engine, 200, 20);
            byte[] back = new byte[4096];
            BlockingIo.read(engine, 0, MemorySegment.ofArray(back));
            for (int i = 0; i < back.length; i++) {
                boolean zeroed = i >= 100 && i < 110 || i >= 200 && i < 220;
                assertThat(back[i]).as("byte %d", i).isEqualTo((byte) (zeroed ? 0 : 1));
            }
            assertThat(engine.supportsDiscard()).isTrue();
            assertThat(engine.supportsWriteZeroes()).isTrue();
        }
    }

    @Test
    void discardAndWriteZeroesOutOfRangeOrMisalignedFailWithoutTouchingTheStore() throws Exception {
        try (MemoryEngine engine = new MemoryEngine(8192, 4096)) {
            BlockingIo.write(engine, 4096, MemorySegment.ofArray(new byte[4096]).fill((byte) 7));
            assertThatThrownBy(() -> BlockingIo.discard(engine, 4096, 8192))
                    .isInstanceOfSatisfying(BackingIoException.class, error -> {
                        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
                        assertThat(error).hasMessageContaining("discard offset=4096 length=8192");
                    });
            assertThatThrownBy(() -> BlockingIo.writeZeroes(engine, 4096, 512))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.MISALIGNED));
            byte[] back = new byte[4096];
            BlockingIo.read(engine, 4096, MemorySegment.ofArray(back));
            assertThat(back).containsOnly((byte) 7);
        }
    }

    @Test
    void outOfRangeAndMisalignedRangesFailThroughTheCallback() {
        try (MemoryEngine engine = new MemoryEngine(8192, 4096)) {
            assertThatThrownBy(() -> BlockingIo.read(engine, 4096, MemorySegment.ofArray(new byte[8192])))
                    .isInstanceOfSatisfying(BackingIoException.class, error -> {
                        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.OUT_OF_RANGE);
                        assertThat(error).hasMessageContaining("read offset=4096 length=8192")
                                .hasMessageContaining("[0, 8192)");
                    });
            assertThatThrownBy(() -> BlockingIo.write(engine, 512, MemorySegment.ofArray(new byte[4096])))
                    .isInstanceOfSatisfying(BackingIoException.class, error -> {
                        assertThat(error.reason()).isEqualTo(BackingIoException.Reason.MISALIGNED);
                        assertThat(error).hasMessageContaining("multiples of 4096");
                    });
        }
    }

    @Test
    void memoryThatCannotBeWrittenFailsWithIoError() {
        try (MemoryEngine engine = new MemoryEngine(4096)) {
            MemorySegment readOnly = MemorySegment.ofArray(new byte[512]).asReadOnly();
            assertThatThrownBy(() -> BlockingIo.read(engine, 0, readOnly))
                    .isInstanceOfSatisfying(BackingIoException.class,
                            error -> assertThat(error.reason()).isEqualTo(BackingIoException.Reason.IO_ERROR));
        }
    }
}
