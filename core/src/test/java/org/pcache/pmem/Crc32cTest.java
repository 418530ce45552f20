package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

import org.junit.jupiter.api.Test;

class Crc32cTest {

    /** Bit-at-a-time definition of the kernel's crc32c(seed, buf, len): an independent oracle. */
    private static int reference(int seed, byte[] data, int offset, int length) {
        int register = seed;
        for (int i = offset; i < offset + length; i++) {
            register ^= data[i] & 0xFF;
            for (int bit = 0; bit < 8; bit++) {
                register = (register >>> 1) ^ ((register & 1) != 0 ? Crc32c.POLY : 0);
            }
        }
        return register;
    }

    @Test
    void seededCrcOfDigitsMatchesTheDesignVector() {
        byte[] digits = "123456789".getBytes(StandardCharsets.US_ASCII);

        assertThat(Crc32c.crc(digits, 0, digits.length)).isEqualTo(0xE5868AB2);
        assertThat(Crc32c.crc(MemorySegment.ofArray(digits), 0, digits.length)).isEqualTo(0xE5868AB2);
    }

    @Test
    void seededCrcOfTwentyZeroBytesMatchesTheDesignVector() {
        assertThat(Crc32c.crc(new byte[20], 0, 20)).isEqualTo(0xB9B69066);
    }

    @Test
    void allOnesSeedWithFinalInversionIsTheStandardCrc32c() {
        byte[] digits = "123456789".getBytes(StandardCharsets.US_ASCII);

        int standard = ~Crc32c.crc(0xFFFFFFFF, MemorySegment.ofArray(digits), 0, digits.length);

        assertThat(standard).isEqualTo(0xE3069283);
    }

    @Test
    void seedIsDmPcacheSeed() {
        assertThat(Crc32c.SEED).isEqualTo(0x3B15A);
    }

    @Test
    void emptyRangeYieldsTheSeed() {
        assertThat(Crc32c.crc(new byte[0], 0, 0)).isEqualTo(Crc32c.SEED);
        assertThat(Crc32c.crc(0x1234, MemorySegment.ofArray(new byte[4]), 2, 0)).isEqualTo(0x1234);
    }

    @Test
    void fourKibPatternMatchesIndependentlyComputedValue() {
        byte[] data = new byte[4096];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 31 + 7);
        }
        // Computed with a bitwise Python implementation of the same definition.
        assertThat(Crc32c.crc(data, 0, data.length)).isEqualTo(0x190EC7D0);
    }

    @Test
    void randomRangesAndSeedsAgreeWithTheBitwiseReference() {
        long seed = 0x5EED_C2C;
        SplittableRandom random = new SplittableRandom(seed);
        byte[] data = new byte[9000];
        random.nextBytes(data);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment nativeCopy = arena.allocate(data.length);
            MemorySegment.copy(MemorySegment.ofArray(data), 0, nativeCopy, 0, data.length);
            for (int round = 0; round < 300; round++) {
                int offset = random.nextInt(data.length);
                int length = random.nextInt(data.length - offset + 1);
                int crcSeed = round % 3 == 0 ? Crc32c.SEED : random.nextInt();
                int expected = reference(crcSeed, data, offset, length);

                assertThat(Crc32c.crc(crcSeed, MemorySegment.ofArray(data), offset, length))
                        .as("heap seed=%d round=%d crcSeed=%x offset=%d length=%d", seed, round, crcSeed, offset,
                                length)
                        .isEqualTo(expected);
                assertThat(Crc32c.crc(crcSeed, nativeCopy, offset, length))
                        .as("native seed=%d round=%d", seed, round).isEqualTo(expected);
                if (crcSeed == Crc32c.SEED) {
                    assertThat(Crc32c.crc(data, offset, length)).as("byte[] seed=%d round=%d", seed, round)
                            .isEqualTo(expected);
                }
            }
        }
    }

    @Test
    void readOnlyViewsAreAccepted() {
        byte[] digits = "123456789".getBytes(StandardCharsets.US_ASCII);

        assertThat(Crc32c.crc(MemorySegment.ofArray(digits).asReadOnly(), 0, digits.length)).isEqualTo(0xE5868AB2);
    }

    @Test
    void rangeOutsideTheSegmentIsRejected() {
        MemorySegment segment = MemorySegment.ofArray(new byte[16]);

        assertThatThrownBy(() -> Crc32c.crc(segment, 8, 9)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> Crc32c.crc(new byte[16], -1, 4)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}
