package org.pcache.cache;

import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CachePosOnMedia;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.DualReplica;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.SegmentGenOnMedia;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Reads and rewrites the kset log, the tails and segment generations of a closed cache image, with valid CRCs, so a
 * test can build images a correct writer never produces and know that only the field under test is wrong.
 *
 * <p>Assumes an image formatted by pcache, whose logical segment ids equal the physical ones. Every edit is persisted.
 */
final class KsetLogEditor {

    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int HEADER_SIZE = (int) KsetOnMedia.HEADER_SIZE;

    /** A kset found by {@link #walk()}: a normal one of {@code keyNum} keys, or a LAST one pointing at {@code next}. */
    record Kset(CachePos pos, boolean last, int keyNum, int next) {
        int size() {
            return last ? HEADER_SIZE : KsetOnMedia.size(keyNum);
        }
    }

    /** A decoded key record. */
    record Key(long off, int len, int flags, int segId, int segOff, long segGen, int dataCrc) {
    }

    private final PmemRegion region;

    KsetLogEditor(PmemRegion region) {
        this.region = region;
    }

    /** Region offset of logical segment {@code seg}'s data area. */
    static long dataOffset(int seg) {
        return CacheDeviceLayout.segmentOffset(seg) + CacheDeviceLayout.SEGMENT_DATA_OFFSET;
    }

    /** Region offset of log position {@code pos}. */
    static long regionOffset(CachePos pos) {
        return dataOffset(pos.seg()) + pos.off();
    }

    CachePos keyTail() {
        return loadPos(CacheDeviceLayout.KEY_TAIL_OFFSET);
    }

    CachePos dirtyTail() {
        return loadPos(CacheDeviceLayout.DIRTY_TAIL_OFFSET);
    }

    void keyTail(CachePos pos) {
        writePos(CacheDeviceLayout.KEY_TAIL_OFFSET, pos);
    }

    void dirtyTail(CachePos pos) {
        writePos(CacheDeviceLayout.DIRTY_TAIL_OFFSET, pos);
    }

    /** Persists {@code gen} as the generation of segment {@code seg}. */
    void segmentGen(int seg, long gen) {
        DualReplica replica = new DualReplica(region,
                CacheDeviceLayout.segmentOffset(seg) + CacheDeviceLayout.SEGMENT_CTRL_OFFSET,
                SegmentGenOnMedia.SIZE, SegmentGenOnMedia.SLOT_STRIDE);
        MemorySegment buf = MemorySegment.ofArray(new byte[(int) SegmentGenOnMedia.SIZE]);
        replica.loadLatest(buf);
        new SegmentGenOnMedia().wrap(buf).gen(gen);
        replica.writeNext(buf);
    }

    /** The valid ksets from key_tail, following LAST ksets (at most {@code 64} hops), up to the first invalid one. */
    List<Kset> walk() {
        List<Kset> ksets = new ArrayList<>();
        CachePos pos = keyTail();
        MemorySegment staging = MemorySegment.ofArray(new byte[KsetOnMedia.MAX_SIZE]);
        KsetOnMedia kset = new KsetOnMedia().wrap(staging);
        for (int hops = 0; hops < 64; ) {
            KsetOnMedia.Status status = kset.decode(region, regionOffset(pos),
                    CacheDeviceLayout.SEGMENT_DATA_SIZE - pos.off());
            if (status == KsetOnMedia.Status.LAST) {
                ksets.add(new Kset(pos, true, 0, kset.nextCacheSegId()));
                pos = new CachePos(kset.nextCacheSegId(), 0);
                hops++;
            } else if (status == KsetOnMedia.Status.NORMAL) {
                ksets.add(new Kset(pos, false, kset.keyNum(), -1));
                pos = new CachePos(pos.seg(), pos.off() + kset.onMediaSize());
            } else {
                return ksets;
            }
        }
        throw new AssertionError("more than 64 LAST hops from " + keyTail());
    }

    /** Where the log ends: the position after the last valid kset. */
    CachePos head() {
        List<Kset> ksets = walk();
        if (ksets.isEmpty()) {
            return keyTail();
        }
        Kset last = ksets.getLast();
        return last.last() ? new CachePos(last.next(), 0) : new CachePos(last.pos().seg(), last.pos().off()
                + last.size());
    }

    /** Key {@code index} of the kset at {@code pos}. */
    Key key(CachePos pos, int index) {
        MemorySegment buf = read(pos, KsetOnMedia.MAX_SIZE);
        KeyOnMedia key = new KsetOnMedia().wrap(buf).key(index, new KeyOnMedia());
        return new Key(key.off(), key.len(), key.flags(), key.cacheSegId(), key.cacheSegOff(), key.segGen(),
                key.dataCrc());
    }

    /** Every key of the log, in log order. */
    List<Key> keys() {
        List<Key> keys = new ArrayList<>();
        for (Kset kset : walk()) {
            for (int i = 0; i < kset.keyNum(); i++) {
                keys.add(key(kset.pos(), i));
            }
        }
        return keys;
    }

    /** Applies {@code edit} to key {@code index} of the normal kset at {@code pos} and reseals the kset's CRC. */
    void editKey(CachePos pos, int index, Consumer<KeyOnMedia> edit) {
        MemorySegment buf = read(pos, KsetOnMedia.MAX_SIZE);
        KsetOnMedia kset = new KsetOnMedia().wrap(buf);
        edit.accept(kset.key(index, new KeyOnMedia()));
        int size = kset.sealKeys(kset.keyNum());
        write(pos, buf, size);
    }

    /**
     * Sets key_num of the kset at {@code pos} to {@code keyNum} (any value) with a CRC computed over the
     * {@code 24 + 40 * keyNum} bytes found there, and writes back only the header.
     */
    void forceKeyNum(CachePos pos, int keyNum) {
        int size = HEADER_SIZE + keyNum * (int) KeyOnMedia.SIZE;
        MemorySegment buf = read(pos, size);
        buf.set(LE_INT, KsetOnMedia.KEY_NUM_OFFSET, keyNum);
        buf.set(LE_INT, KsetOnMedia.CRC_OFFSET, Crc32c.crc(buf, KsetOnMedia.KEY_NUM_OFFSET,
                size - KsetOnMedia.KEY_NUM_OFFSET));
        write(pos, buf, HEADER_SIZE);
    }

    /**
     * Writes a sealed normal kset of {@code keyNum} keys at {@code pos}, each key a copy of {@code key}, but only its
     * first {@code written} bytes (so a kset that would overrun the data area is not written past it).
     */
    void writeKset(CachePos pos, int keyNum, Key key, int written) {
        MemorySegment buf = MemorySegment.ofArray(new byte[KsetOnMedia.size(keyNum)]);
        KsetOnMedia kset = new KsetOnMedia().wrap(buf);
        for (int i = 0; i < keyNum; i++) {
            kset.key(i, new KeyOnMedia()).clear().off(key.off()).len(key.len()).flags(key.flags())
                    .cacheSegId(key.segId()).cacheSegOff(key.segOff()).segGen(key.segGen()).dataCrc(key.dataCrc());
        }
        kset.sealKeys(keyNum);
        write(pos, buf, written);
    }

    /** Writes a sealed LAST kset at {@code pos} pointing at logical segment {@code next}. */
    void writeLast(CachePos pos, int next) {
        MemorySegment buf = MemorySegment.ofArray(new byte[HEADER_SIZE]);
        new KsetOnMedia().wrap(buf).sealLast(next);
        write(pos, buf, HEADER_SIZE);
    }

    /** Inverts one byte at {@code offset} bytes into the kset at {@code pos}, leaving its CRC stale. */
    void flipByte(CachePos pos, int offset) {
        MemorySegment one = read(new CachePos(pos.seg(), pos.off() + offset), 1);
        one.set(ValueLayout.JAVA_BYTE, 0, (byte) ~one.get(ValueLayout.JAVA_BYTE, 0));
        write(new CachePos(pos.seg(), pos.off() + offset), one, 1);
    }

    private MemorySegment read(CachePos pos, int length) {
        MemorySegment buf = MemorySegment.ofArray(new byte[length]);
        region.read(regionOffset(pos), buf, 0, length);
        return buf;
    }

    private void write(CachePos pos, MemorySegment buf, int length) {
        long at = regionOffset(pos);
        region.write(at, buf, 0, length);
        region.persist(at, length);
    }

    private CachePos loadPos(long offset) {
        MemorySegment buf = MemorySegment.ofArray(new byte[(int) CachePosOnMedia.SIZE]);
        if (!tailReplica(offset).loadLatest(buf)) {
            throw new AssertionError("no valid replica of the tail at " + offset);
        }
        CachePosOnMedia pos = new CachePosOnMedia().wrap(buf);
        return new CachePos(pos.cacheSegId(), pos.segOff());
    }

    private void writePos(long offset, CachePos pos) {
        DualReplica replica = tailReplica(offset);
        MemorySegment buf = MemorySegment.ofArray(new byte[(int) CachePosOnMedia.SIZE]);
        replica.loadLatest(buf);
        new CachePosOnMedia().wrap(buf).encode(pos);
        replica.writeNext(buf);
    }

    private DualReplica tailReplica(long offset) {
        return new DualReplica(region, offset, CachePosOnMedia.SIZE, CachePosOnMedia.SLOT_STRIDE);
    }
}
