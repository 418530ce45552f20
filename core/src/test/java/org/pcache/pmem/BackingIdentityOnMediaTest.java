package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.pcache.pmem.BackingIdentityOnMedia.State;

class BackingIdentityOnMediaTest {

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(64 * 1024);

    @Test
    void aZeroSlotHoldsNoRecord() {
        assertThat(BackingIdentityOnMedia.read(region).state()).isEqualTo(State.ABSENT);
    }

    @Test
    void aWrittenRecordReadsBackAndSurvivesACrash() {
        BackingIdentityOnMedia.write(region, "kind=nbd\nuri=nbd://127.0.0.1:1/\nsize=1024\n");
        region.powerCut(1);
        assertThat(BackingIdentityOnMedia.read(region))
                .isEqualTo(new BackingIdentityOnMedia.Contents(State.VALID, "kind=nbd\nuri=nbd://127.0.0.1:1/\nsize=1024\n"));
    }

    @Test
    void aFlippedTextByteIsDamagedNotAnotherBacking() {
        BackingIdentityOnMedia.write(region, "kind=file\npath=/a\n");
        region.write(20, MemorySegment.ofArray(new byte[] {'b'}), 0, 1);
        assertThat(BackingIdentityOnMedia.read(region).state()).isEqualTo(State.DAMAGED);
    }

    @Test
    void aTextLongerThanTheSlotIsRefused() {
        assertThatThrownBy(() -> BackingIdentityOnMedia.write(region, "x".repeat(BackingIdentityOnMedia.MAX_TEXT + 1)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("does not fit");
    }
}
