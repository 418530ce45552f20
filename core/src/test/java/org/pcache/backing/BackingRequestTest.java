package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The two request kinds and the upper request's reference counting. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BackingRequestTest {

    @Test
    void aSliceIsRetargetedToTheUpperOffsetPlusItsOwnAndViewsItsPartOfTheBuffer() {
        byte[] data = new byte[4096];
        data[1024] = 42;
        UpperRequest upper = new UpperRequest(1 << 20, MemorySegment.ofArray(data), error -> { });
        SliceRequest slice = new SliceRequest(BackingOp.READ, upper, 1024, 512, BackingCompletion.NONE);
        assertThat(slice.backingOffset()).isEqualTo((1 << 20) + 1024);
        assertThat(slice.memory().byteSize()).isEqualTo(512);
        assertThat(slice.memory().get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) 42);
    }

    @Test
    void anUpperRequestCompletesOnceWhenItsLastReferenceGoesWithTheFirstError() {
        List<Throwable> completions = new ArrayList<>();
        UpperRequest upper = new UpperRequest(0, MemorySegment.ofArray(new byte[1024]), completions::add);
        new SliceRequest(BackingOp.READ, upper, 0, 512, BackingCompletion.NONE);
        new SliceRequest(BackingOp.READ, upper, 512, 512, BackingCompletion.NONE);
        IOException first = new IOException("first");
        upper.release(first);
        upper.release(new IOException("second"));
        assertThat(completions).isEmpty();
        upper.release(null);
        assertThat(completions).containsExactly(first);
        assertThatThrownBy(() -> upper.release(null)).isInstanceOf(IllegalStateException.class);
        assertThatThrownBy(upper::retain).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void slicesOutsideTheUpperBufferOrReadingIntoReadOnlyMemoryAreRefused() {
        UpperRequest upper = new UpperRequest(0, MemorySegment.ofArray(new byte[1024]), error -> { });
        assertThatThrownBy(() -> new SliceRequest(BackingOp.READ, upper, 512, 1024, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new SliceRequest(BackingOp.READ, upper, -1, 512, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class);
        UpperRequest readOnly = new UpperRequest(0, MemorySegment.ofArray(new byte[1024]).asReadOnly(), e -> { });
        assertThatThrownBy(() -> new SliceRequest(BackingOp.READ, readOnly, 0, 512, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("read-only");
        assertThat(new SliceRequest(BackingOp.WRITE, readOnly, 0, 512, BackingCompletion.NONE).length())
                .isEqualTo(512);
    }

    @Test
    void memoryRequestsNeedMemoryAndAWritableTargetForReads() {
        assertThatThrownBy(() -> new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[0]), 0,
                BackingCompletion.NONE)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new MemoryRequest(BackingOp.READ, MemorySegment.ofArray(new byte[8]).asReadOnly(),
                0, BackingCompletion.NONE)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(new byte[8]).asReadOnly(), 16,
                BackingCompletion.NONE).length()).isEqualTo(8);
    }

    @Test
    void rangeRequestsCarryNoMemoryAndMemoryRequestsNothingElse() {
        RangeRequest discard = new RangeRequest(BackingOp.DISCARD, 4096, 512, BackingCompletion.NONE);
        assertThat(discard.length()).isEqualTo(512);
        assertThatThrownBy(() -> new RangeRequest(BackingOp.WRITE, 0, 512, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("moves data");
        assertThatThrownBy(() -> new RangeRequest(BackingOp.WRITE_ZEROES, -512, 512, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new RangeRequest(BackingOp.WRITE_ZEROES, 0, 0, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new MemoryRequest(BackingOp.DISCARD, MemorySegment.ofArray(new byte[8]), 0,
                BackingCompletion.NONE)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("RangeRequest");
        UpperRequest upper = new UpperRequest(0, MemorySegment.ofArray(new byte[1024]), error -> { });
        assertThatThrownBy(() -> new SliceRequest(BackingOp.WRITE_ZEROES, upper, 0, 512, BackingCompletion.NONE))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("RangeRequest");
    }
}
