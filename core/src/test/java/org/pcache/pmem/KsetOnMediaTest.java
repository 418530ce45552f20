package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class KsetOnMediaTest {
    private static final long REGION_SIZE = 64 * 1024;
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final CrashSimPmemRegion region = new CrashSimPmemRegion(REGION_SIZE);
    private final MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
    private final KsetOnMedia kset = new KsetOnMedia().wrap(staging);

    @AfterEach
    void closeRegion() {
        region.close();
    }

    /** Encodes a kset of {@code keyNum} keys with distinct fields into a fresh buffer. */
    private static MemorySegment encodedKset(int keyNum) {
        MemorySegment buf = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
        KsetOnMedia encoder = new KsetOnMedia().wrap(buf);
        KeyOnMedia key = new KeyOnMedia();
        for (int i = 0; i < keyNum; i++) {
            encoder.key(i, key).clear().off(i * 4096L).len(4096).cacheSegId(i % 7).cacheSegOff(i * 512).segGen(i)
                    .dataCrc(i * 31);
        }
        encoder.sealKeys(keyNum);
        return buf;
    }

    @Test
    void normalKsetReadFromTheRegionDecodesWithItsKeys() {
        MemorySegment encoded = encodedKset(3);
        region.write(4096, encoded, 0, KsetOnMedia.size(3));

        KsetOnMedia.Status status = kset.decode(region, 4096, 8192);

        assertThat(status).isEqualTo(KsetOnMedia.Status.NORMAL);
        assertThat(status.valid()).isTrue();
        assertThat(kset.keyNum()).isEqualTo(3);
        assertThat(kset.onMediaSize()).isEqualTo(24 + 3 * 40);
        KeyOnMedia key = kset.key(2, new KeyOnMedia());
        assertThat(key.off()).isEqualTo(8192);
        assertThat(key.cacheSegId()).isEqualTo(2);
        assertThat(key.cacheSegOff()).isEqualTo(1024);
        assertThat(key.segGen()).isEqualTo(2);
        assertThat(key.dataCrc()).isEqualTo(62);
    }

    @Test
    void fullKsetOfKeysMaxDecodes() {
        region.write(0, encodedKset(KsetOnMedia.KEYS_MAX), 0, KsetOnMedia.MAX_SIZE);

        assertThat(kset.decode(region, 0, REGION_SIZE)).isEqualTo(KsetOnMedia.Status.NORMAL);
        assertThat(kset.keyNum()).isEqualTo(KsetOnMedia.KEYS_MAX);
    }

    @Test
    void lastKsetDecodesWithTheNextSegment() {
        MemorySegment buf = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
        new KsetOnMedia().wrap(buf).sealLast(12);
        region.write(512, buf, 0, KsetOnMedia.HEADER_SIZE);

        assertThat(kset.decode(region, 512, 1024)).isEqualTo(KsetOnMedia.Status.LAST);
        assertThat(kset.isLast()).isTrue();
        assertThat(kset.nextCacheSegId()).isEqualTo(12);
        assertThat(kset.onMediaSize()).isEqualTo(24);
    }

    @Test
    void zeroTerminatorHasNoMagic() {
        KsetOnMedia.Status status = kset.decode(region, 0, REGION_SIZE);

        assertThat(status).isEqualTo(KsetOnMedia.Status.NO_MAGIC);
        assertThat(status.valid()).isFalse();
    }

    @Test
    void keyNumAboveKeysMaxIsRejectedBeforeTheCrc() {
        MemorySegment encoded = encodedKset(2);
        encoded.set(LE_INT, KsetOnMedia.KEY_NUM_OFFSET, KsetOnMedia.KEYS_MAX + 1);
        region.write(0, encoded, 0, KsetOnMedia.MAX_SIZE);

        assertThat(kset.decode(region, 0, REGION_SIZE)).isEqualTo(KsetOnMedia.Status.KEY_NUM_OUT_OF_RANGE);
    }

    @Test
    void keyNumWithTheTopBitSetIsOutOfRange() {
        MemorySegment encoded = encodedKset(2);
        encoded.set(LE_INT, KsetOnMedia.KEY_NUM_OFFSET, 0xFFFFFFFF);
        region.write(0, encoded, 0, KsetOnMedia.MAX_SIZE);

        assertThat(kset.decode(region, 0, REGION_SIZE)).isEqualTo(KsetOnMedia.Status.KEY_NUM_OUT_OF_RANGE);
    }

    @Test
    void ksetLongerThanTheRestOfTheDataAreaOverruns() {
        region.write(0, encodedKset(3), 0, KsetOnMedia.size(3));

        assertThat(kset.decode(region, 0, KsetOnMedia.size(3) - 1)).isEqualTo(KsetOnMedia.Status.OVERRUNS_DATA_AREA);
        assertThat(kset.decode(region, 0, KsetOnMedia.size(3))).isEqualTo(KsetOnMedia.Status.NORMAL);
    }

    @Test
    void positionWithoutRoomForAHeaderOverruns() {
        assertThat(kset.decode(region, REGION_SIZE - 16, 16)).isEqualTo(KsetOnMedia.Status.OVERRUNS_DATA_AREA);
        assertThat(kset.decode(region, 0, -5)).isEqualTo(KsetOnMedia.Status.OVERRUNS_DATA_AREA);
    }

    @Test
    void readStopsAtTheEndOfTheDataArea() {
        long offset = REGION_SIZE - KsetOnMedia.size(2);
        region.write(offset, encodedKset(2), 0, KsetOnMedia.size(2));

        // A read of MAX_SIZE bytes would run past the region; the bounded read must not.
        assertThat(kset.decode(region, offset, KsetOnMedia.size(2))).isEqualTo(KsetOnMedia.Status.NORMAL);
    }

    @Test
    void everySingleByteCorruptionIsDetected() {
        int size = KsetOnMedia.size(2);
        for (int index = 0; index < size; index++) {
            MemorySegment encoded = encodedKset(2);
            encoded.set(ValueLayout.JAVA_BYTE, index, (byte) (encoded.get(ValueLayout.JAVA_BYTE, index) ^ 0x10));
            region.write(0, encoded, 0, size);

            KsetOnMedia.Status status = kset.decode(region, 0, REGION_SIZE);

            assertThat(status.valid()).as("byte %d flipped: %s", index, status).isFalse();
        }
    }

    @Test
    void lastKsetWithAFlippedNextSegmentFailsItsCrc() {
        MemorySegment buf = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
        new KsetOnMedia().wrap(buf).sealLast(12);
        buf.set(LE_INT, KsetOnMedia.NEXT_CACHE_SEG_ID_OFFSET, 13);
        region.write(0, buf, 0, KsetOnMedia.HEADER_SIZE);

        assertThat(kset.decode(region, 0, REGION_SIZE)).isEqualTo(KsetOnMedia.Status.CRC_MISMATCH);
    }

    @Test
    void stagingSmallerThanTheBoundedReadIsAProgrammingError() {
        KsetOnMedia small = new KsetOnMedia().wrap(MemorySegment.ofArray(new byte[100]));

        assertThatThrownBy(() -> small.decode(region, 0, REGION_SIZE)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> small.decode(REGION_SIZE)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void sealingMoreThanKeysMaxIsRefused() {
        assertThatThrownBy(() -> kset.sealKeys(KsetOnMedia.KEYS_MAX + 1))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("129");
        assertThatThrownBy(() -> kset.key(KsetOnMedia.KEYS_MAX, new KeyOnMedia()))
                .isInstanceOf(IndexOutOfBoundsException.class);
    }
}
