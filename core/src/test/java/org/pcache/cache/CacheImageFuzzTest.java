package org.pcache.cache;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CacheInfoOnMedia;
import org.pcache.pmem.CachePosOnMedia;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.DualReplica;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.SegmentGenOnMedia;
import org.pcache.pmem.SegmentInfoOnMedia;
import org.pcache.pmem.SuperblockOnMedia;

/**
 * Coverage-guided fuzzing of opening a cache image: {@link CacheImage#inspect} with {@code check()} and
 * {@code walk()} (what {@code pcache check} and {@code dump} do), then {@link Pcache#open}, which replays the log, and
 * a close. The image is a valid one (a few writes in three ksets, closed) with the fuzzer's edits applied to its
 * records: the superblock, both cache_info copies, both copies of key_tail and dirty_tail, the segment info and
 * generation slots of the segments in use, and every kset of the log with its keys. Most edits are sealed with a
 * valid CRC, so they reach the field checks behind it. Whatever the edits, opening either succeeds or fails with an
 * {@link IOException} that says what is wrong; nothing else is thrown.
 *
 * <p>Input: a sequence of edits of 4 + n bytes: the record (index into the records above, modulo their count), the
 * offset in the record (16 bits, modulo its size), a byte whose low 4 bits are n - 1 and whose bit 7 leaves the CRC
 * as it is, then the n bytes written.
 */
class CacheImageFuzzTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int PAGE = 4096;

    /** A record of the base image the fuzzer may edit; {@code kset} records recompute their size from key_num. */
    private record Record(long offset, int size, boolean kset) {
    }

    private static List<Long> basePages;
    private static List<byte[]> basePageBytes;
    private static List<Record> records;
    /** Segments holding the base image's log and data, whose pages are restored for every input. */
    private static List<Integer> segmentsInUse = List.of();

    @BeforeAll
    static void writeBaseImage() throws IOException {
        SparseRegion region = new SparseRegion(CacheHarness.CACHE_SIZE);
        CacheHarness harness = CacheHarness.on(region, new MemoryEngine(BACKING_SIZE), CacheHarness.quietOptions());
        try {
            harness.writePattern(0, 4096, 1, Durability.BUFFERED);
            harness.writePattern(64 << 10, 8192, 2, Durability.BUFFERED);
            CacheHarness.await(harness.cache.flushAsync());
            harness.writePattern((4 << 20) + 4096, 4096, 3, Durability.FUA);
            harness.writePattern(1 << 20, 16384, 4, Durability.FUA);
            harness.cache.close();
            records = records(region);
            basePages = new ArrayList<>();
            basePageBytes = new ArrayList<>();
            byte[] page = new byte[PAGE];
            MemorySegment buf = MemorySegment.ofArray(page);
            for (long off = 0; off < region.size(); off += PAGE) {
                if (off >= CacheDeviceLayout.SEGMENTS_OFFSET && !inUse(off)) {
                    continue;
                }
                region.read(off, buf, 0, PAGE);
                if (!allZero(page)) {
                    basePages.add(off);
                    basePageBytes.add(page.clone());
                }
            }
        } finally {
            harness.close();
        }
    }

    @AfterAll
    static void forgetBaseImage() {
        basePages = null;
        basePageBytes = null;
    }

    @FuzzTest(maxDuration = "30s")
    void anEditedImageOpensOrIsRefusedWithAnIoException(byte[] input) throws IOException {
        try (SparseRegion region = restore()) {
            edit(region, ByteBuffer.wrap(input));
            inspect(region);
            open(region);
        }
    }

    private static void inspect(SparseRegion region) {
        try {
            CacheImage image = CacheImage.inspect(region, BACKING_SIZE);
            for (String problem : image.check()) {
                assertThat(problem).isNotBlank();
            }
            image.walk(kset -> assertThat(kset.pos()).isNotNull());
            image.dirtyBytes();
        } catch (IOException e) {
            assertThat(e.getMessage()).as("%s", e.getClass()).isNotBlank();
        }
    }

    private static void open(SparseRegion region) {
        BackingDevice backing = BackingDevice.start(new MemoryEngine(BACKING_SIZE));
        try {
            Pcache cache = Pcache.open(region, backing, CacheHarness.quietOptions());
            MemorySegment buf = MemorySegment.ofArray(new byte[8192]);
            CacheHarness.await(cache.readAsync(64 << 10, buf));
            cache.close();
        } catch (IOException e) {
            assertThat(e.getMessage()).as("%s", e.getClass()).isNotBlank();
        } finally {
            backing.close();
        }
    }

    private static SparseRegion restore() {
        SparseRegion region = new SparseRegion(CacheHarness.CACHE_SIZE);
        for (int i = 0; i < basePages.size(); i++) {
            region.write(basePages.get(i), MemorySegment.ofArray(basePageBytes.get(i)), 0, PAGE);
        }
        return region;
    }

    private static void edit(SparseRegion region, ByteBuffer input) {
        while (input.remaining() >= 4) {
            Record record = records.get(Byte.toUnsignedInt(input.get()) % records.size());
            int at = Short.toUnsignedInt(input.getShort()) % record.size();
            int control = Byte.toUnsignedInt(input.get());
            int length = Math.min(Math.min((control & 0xF) + 1, input.remaining()), record.size() - at);
            byte[] value = new byte[length];
            input.get(value);
            region.write(record.offset() + at, MemorySegment.ofArray(value), 0, length);
            if ((control & 0x80) == 0) {
                seal(region, record);
            }
        }
    }

    /** Stores the CRC32C of the record's bytes 4.. at its offset 0: every record here keeps its CRC there. */
    private static void seal(SparseRegion region, Record record) {
        int size = record.size();
        if (record.kset()) {
            MemorySegment header = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
            region.read(record.offset(), header, 0, KsetOnMedia.HEADER_SIZE);
            KsetOnMedia kset = new KsetOnMedia().wrap(header);
            if (!kset.isLast() && Integer.compareUnsigned(kset.keyNum(), KsetOnMedia.KEYS_MAX) > 0) {
                return;
            }
            size = kset.isLast() ? (int) KsetOnMedia.HEADER_SIZE : KsetOnMedia.size(kset.keyNum());
        }
        MemorySegment bytes = MemorySegment.ofArray(new byte[size]);
        region.read(record.offset(), bytes, 0, size);
        MemorySegment crc = MemorySegment.ofArray(new byte[Integer.BYTES]);
        crc.set(LE_INT, 0, Crc32c.crc(bytes, Integer.BYTES, size - Integer.BYTES));
        region.write(record.offset(), crc, 0, Integer.BYTES);
    }

    private static List<Record> records(SparseRegion region) {
        List<Record> list = new ArrayList<>();
        list.add(new Record(CacheDeviceLayout.SUPERBLOCK_OFFSET, (int) SuperblockOnMedia.SIZE, false));
        for (int slot = 0; slot < DualReplica.SLOTS; slot++) {
            list.add(new Record(CacheDeviceLayout.CACHE_INFO_OFFSET + slot * CacheInfoOnMedia.SLOT_STRIDE,
                    (int) CacheInfoOnMedia.SIZE, false));
            list.add(new Record(CacheDeviceLayout.KEY_TAIL_OFFSET + slot * CachePosOnMedia.SLOT_STRIDE,
                    (int) CachePosOnMedia.SIZE, false));
            list.add(new Record(CacheDeviceLayout.DIRTY_TAIL_OFFSET + slot * CachePosOnMedia.SLOT_STRIDE,
                    (int) CachePosOnMedia.SIZE, false));
        }
        KsetLogEditor log = new KsetLogEditor(region);
        List<Integer> segments = new ArrayList<>();
        for (KsetLogEditor.Kset kset : log.walk()) {
            list.add(new Record(KsetLogEditor.regionOffset(kset.pos()), kset.size(), true));
            addSegment(segments, kset.pos().seg());
        }
        list.add(new Record(KsetLogEditor.regionOffset(log.head()), KsetOnMedia.MAX_SIZE, true));
        for (KsetLogEditor.Key key : log.keys()) {
            addSegment(segments, key.segId());
        }
        for (int seg : segments) {
            long base = CacheDeviceLayout.segmentOffset(seg);
            for (int slot = 0; slot < DualReplica.SLOTS; slot++) {
                list.add(new Record(base + CacheDeviceLayout.SEGMENT_INFO_OFFSET + slot * SegmentInfoOnMedia.SLOT_STRIDE,
                        (int) SegmentInfoOnMedia.SIZE, false));
                list.add(new Record(base + CacheDeviceLayout.SEGMENT_CTRL_OFFSET + slot * SegmentGenOnMedia.SLOT_STRIDE,
                        (int) SegmentGenOnMedia.SIZE, false));
            }
        }
        segmentsInUse = segments;
        return list;
    }

    private static void addSegment(List<Integer> segments, int seg) {
        if (!segments.contains(seg)) {
            segments.add(seg);
        }
    }

    private static boolean inUse(long offset) {
        long seg = (offset - CacheDeviceLayout.SEGMENTS_OFFSET) / CacheDeviceLayout.SEGMENT_SIZE;
        return segmentsInUse.contains((int) seg) || seg == 0;
    }

    private static boolean allZero(byte[] page) {
        for (byte b : page) {
            if (b != 0) {
                return false;
            }
        }
        return true;
    }
}
