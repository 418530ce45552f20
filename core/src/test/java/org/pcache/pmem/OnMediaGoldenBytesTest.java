package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.HexFormat;

import org.junit.jupiter.api.Test;

/**
 * Every record encoded to the exact bytes dm-pcache would store, CRC included. The expected bytes were produced by a
 * separate Python script (struct.pack of the C layouts plus a bitwise crc32c), not by this code.
 */
class OnMediaGoldenBytesTest {
    private static final HexFormat HEX = HexFormat.of();

    private static MemorySegment staging(long size) {
        return MemorySegment.ofArray(new byte[Math.toIntExact(size)]);
    }

    private static String hex(MemorySegment segment, long length) {
        return HEX.formatHex(segment.asSlice(0, length).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }

    /** Seals a replicated record the way DualReplica does, at a chosen seq. */
    private static void sealAt(MemorySegment record, long size, int seq) {
        MetaHeader.seq(record, seq);
        MetaHeader.seal(record, size);
    }

    @Test
    void superblockOfThirtyOneSegments() {
        MemorySegment buf = staging(SuperblockOnMedia.SIZE);
        new SuperblockOnMedia().wrap(buf).flags(0).magic(SuperblockOnMedia.MAGIC).segNum(31).seal();

        assertThat(hex(buf, SuperblockOnMedia.SIZE)).isEqualTo("42777f0400000000ef96c596fa5eb0651f00000000000000");
        assertThat(new SuperblockOnMedia().wrap(buf).crcValid()).isTrue();
    }

    @Test
    void cacheInfoWithInitDoneAndDefaultGcPercent() {
        MemorySegment buf = staging(CacheInfoOnMedia.SIZE);
        new CacheInfoOnMedia().wrap(buf).encode(new CacheInfo(0, 31, false, true, 0, 70, 0));
        sealAt(buf, CacheInfoOnMedia.SIZE, 1);

        assertThat(hex(buf, CacheInfoOnMedia.SIZE)).isEqualTo("6dfecadd01000000000000001f0000008211000000000000");
    }

    @Test
    void cacheInfoWithDataCrc() {
        MemorySegment buf = staging(CacheInfoOnMedia.SIZE);
        new CacheInfoOnMedia().wrap(buf).encode(new CacheInfo(2, 30, true, true, 0, 70, 0));
        sealAt(buf, CacheInfoOnMedia.SIZE, 7);

        assertThat(hex(buf, CacheInfoOnMedia.SIZE)).isEqualTo("f90bfbf707000000020000001e0000008311000000000000");
    }

    @Test
    void cacheInfoDecodesItsFlagBits() {
        MemorySegment buf = MemorySegment.ofArray(HEX.parseHex("f90bfbf707000000020000001e0000008311000000000000"));

        CacheInfo info = new CacheInfoOnMedia().wrap(buf).decode();

        assertThat(info).isEqualTo(new CacheInfo(2, 30, true, true, 0, 70, 0x1183));
        assertThat(MetaHeader.crcValid(buf, CacheInfoOnMedia.SIZE)).isTrue();
        assertThat(MetaHeader.seq(buf)).isEqualTo(7);
    }

    @Test
    void tailPosition() {
        MemorySegment buf = staging(CachePosOnMedia.SIZE);
        new CachePosOnMedia().wrap(buf).encode(new CachePos(5, 4096));
        sealAt(buf, CachePosOnMedia.SIZE, 3);

        assertThat(hex(buf, CachePosOnMedia.SIZE)).isEqualTo("10f59514030000000500000000100000");
    }

    @Test
    void segmentInfoLinkedToTheNextSegment() {
        MemorySegment buf = staging(SegmentInfoOnMedia.SIZE);
        new SegmentInfoOnMedia().wrap(buf).type(SegmentInfoOnMedia.TYPE_CACHE_DATA).linkNext(7);
        sealAt(buf, SegmentInfoOnMedia.SIZE, 2);

        assertThat(hex(buf, SegmentInfoOnMedia.SIZE)).isEqualTo("439c23ff020000000300000007000000");
    }

    @Test
    void segmentGen() {
        MemorySegment buf = staging(SegmentGenOnMedia.SIZE);
        new SegmentGenOnMedia().wrap(buf).gen(0x0102030405060708L);
        sealAt(buf, SegmentGenOnMedia.SIZE, 1);

        assertThat(hex(buf, SegmentGenOnMedia.SIZE)).isEqualTo("266f24c4010000000807060504030201");
    }

    @Test
    void ksetOfTwoKeys() {
        MemorySegment buf = staging(KsetOnMedia.MAX_SIZE);
        KsetOnMedia kset = new KsetOnMedia().wrap(buf);
        KeyOnMedia key = new KeyOnMedia();
        kset.key(0, key).clear().off(0x100000).len(4096).flags(0).cacheSegId(3).cacheSegOff(8192).segGen(5)
                .dataCrc(0xDEADBEEF);
        kset.key(1, key).clear().off(0x200000).len(512).flags(KeyOnMedia.FLAG_CLEAN).cacheSegId(4).cacheSegOff(0)
                .segGen(6).dataCrc(0);

        int size = kset.sealKeys(2);

        assertThat(size).isEqualTo(104);
        assertThat(hex(buf, size)).isEqualTo("3ebeef42020000001a4f164ea694686700000000000000000000100000000000"
                + "001000000000000003000000002000000500000000000000efbeadde00000000"
                + "00002000000000000002000002000000040000000000000006000000000000000000000000000000");
    }

    @Test
    void lastKsetPointingAtSegmentNine() {
        MemorySegment buf = staging(KsetOnMedia.MAX_SIZE);

        int size = new KsetOnMedia().wrap(buf).sealLast(9);

        assertThat(size).isEqualTo(24);
        assertThat(hex(buf, size)).isEqualTo("48d7eb3b090000001a4f164ea69468670100000000000000");
    }

    @Test
    void keyFieldsDecodeFromGoldenBytes() {
        MemorySegment buf = MemorySegment.ofArray(
                HEX.parseHex("0000100000000000001000000000000003000000002000000500000000000000efbeadde00000000"));

        KeyOnMedia key = new KeyOnMedia().wrap(buf, 0);

        assertThat(key.off()).isEqualTo(0x100000);
        assertThat(key.len()).isEqualTo(4096);
        assertThat(key.flags()).isZero();
        assertThat(key.cacheSegId()).isEqualTo(3);
        assertThat(key.cacheSegOff()).isEqualTo(8192);
        assertThat(key.segGen()).isEqualTo(5);
        assertThat(key.dataCrc()).isEqualTo(0xDEADBEEF);
    }
}
