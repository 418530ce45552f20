package org.pcache.cache;

import org.pcache.backing.BackingDevice;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheInfo;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A cache image opened offline, without a running cache: validated like an open but never formatted and never
 * written. It checks every structure, walks the kset log for a dump, and rescues dirty data by writing it back to a
 * backing device in log order.
 *
 * <p>Works on images written by the kernel's dm-pcache: the format is the same. It also reads pcache's data-less
 * keys (ZERO, DISCARD, INVALIDATE), and refuses an image marked with an extension it does not know.
 *
 * <p>Threading: one thread at a time.
 */
public final class CacheImage {

    /** Keys of one kset in the log, as recorded. */
    public record LoggedKset(CachePos pos, boolean last, CachePos next, boolean dirty, List<LoggedKey> keys) {
    }

    /**
     * One key record. A data-less record (kind ZERO, DISCARD or INVALIDATE) has seg -1 and segOff, gen and dataCrc 0.
     *
     * @param stale the key's segment was reclaimed after it was written: it no longer counts
     */
    public record LoggedKey(long off, int len, boolean clean, int seg, int segOff, long gen, int dataCrc,
                            boolean stale, Kind kind) {
    }

    /** What a key record holds. */
    public enum Kind {
        /** Data written by a client. */
        DATA,
        /** Data filled from the backing device by a read miss. */
        CLEAN,
        /** No data: the range reads as zeroes; written back as a write-zeroes (pcache extension). */
        ZERO,
        /** No data: the range was discarded; written back as a discard (pcache extension). */
        DISCARD,
        /** No data: the cache dropped the range; nothing is written back (pcache extension). */
        INVALIDATE;

        static Kind of(CacheKey key) {
            if ((key.flags & CacheKey.FLAG_ZERO) != 0) {
                return ZERO;
            }
            if ((key.flags & CacheKey.FLAG_DISCARD) != 0) {
                return DISCARD;
            }
            if ((key.flags & CacheKey.FLAG_INVALIDATE) != 0) {
                return INVALIDATE;
            }
            return key.isClean() ? CLEAN : DATA;
        }
    }

    /** A logical segment of the cache: its physical id and generation. */
    public record SegmentSummary(int seg, int physicalId, long gen) {
    }

    /** What {@link #recover} wrote. */
    public record Recovery(long ksets, long bytes) {
    }

    /** Receives the ksets of the log, in log order. */
    @FunctionalInterface
    public interface KsetVisitor {
        /** One kset, as recorded; the keys of a LAST kset are empty. */
        void visit(LoggedKset kset);
    }

    private final CacheDevice device;
    private final SegmentMap segments;
    private final KsetReader reader;
    private final long backingSize;

    private CacheImage(CacheDevice device, long backingSize) {
        this.device = device;
        this.segments = new SegmentMap(device, ranges -> { });
        this.reader = new KsetReader(device, segments, backingSize);
        this.backingSize = backingSize;
    }

    /**
     * Opens the image on {@code region} read-only. {@code backingSize} bounds the keys' ranges; pass
     * {@link Long#MAX_VALUE} when the backing device is unknown.
     *
     * @throws org.pcache.pmem.CacheDeviceTooSmallException if the region is under 512 MiB
     * @throws CorruptMediaException if the superblock, cache_info, segment chain or tails are invalid, or the device
     *                               holds no formatted cache
     */
    public static CacheImage inspect(PmemRegion region, long backingSize) throws IOException {
        return new CacheImage(CacheDevice.inspect(region), backingSize);
    }

    /** The superblock's flags word (bit 0: big-endian format). */
    public int superblockFlags() {
        return device.superblockFlags();
    }

    /** Physical 16 MiB segments on the device (the superblock's seg_num). */
    public int physicalSegmentCount() {
        return device.physicalSegmentCount();
    }

    /** The newest valid cache_info replica. */
    public CacheInfo cacheInfo() {
        return device.cacheInfo();
    }

    /** The newest valid key_tail: the first kset GC has not reclaimed. */
    public CachePos keyTail() {
        return device.keyTail();
    }

    /** The newest valid dirty_tail: the first kset not written back. */
    public CachePos dirtyTail() {
        return device.dirtyTail();
    }

    /** The segments of the cache, in chain order. */
    public List<SegmentSummary> segments() {
        List<SegmentSummary> list = new ArrayList<>(device.segmentCount());
        for (int seg = 0; seg < device.segmentCount(); seg++) {
            list.add(new SegmentSummary(seg, device.physicalSegmentId(seg), device.segmentGen(seg)));
        }
        return list;
    }

    /**
     * Walks the log from key_tail to its end, handing each kset to {@code visitor}; returns the key head.
     *
     * @throws CorruptMediaException at the first kset or key that fails validation (the ones before it were visited)
     */
    public CachePos walk(KsetVisitor visitor) throws CorruptMediaException {
        return KsetLog.read(device, reader, device.keyTail(), (pos, status, dirty) ->
                visitor.visit(new LoggedKset(pos, status == KsetOnMedia.Status.LAST, reader.next(), dirty,
                        keys(status))));
    }

    /**
     * Validates every structure: metadata (already checked by {@link #inspect}), every kset and key of the log, the
     * data CRC of every live key when the cache keeps them, and that dirty_tail lies on the log. Returns one line per
     * problem; empty when the image is clean.
     */
    public List<String> check() {
        List<String> problems = new ArrayList<>();
        boolean dataCrc = device.cacheInfo().dataCrc();
        try {
            KsetLog.read(device, reader, device.keyTail(), (pos, status, dirty) -> {
                if (status == KsetOnMedia.Status.NORMAL) {
                    checkKeys(dataCrc, problems);
                }
            });
        } catch (CorruptMediaException e) {
            problems.add(e.getMessage());
        }
        return problems;
    }

    /**
     * Writes every dirty extent from dirty_tail to the end of the log onto {@code backing}, kset by kset in log order,
     * flushing after each: what writeback would have done, write-zeroes and discards included. The image is not changed. {@code progress} receives, after
     * each kset, the dirty key-record bytes dealt with so far, in the measure of {@link #dirtyBytes} (so the last
     * value equals it; extents a later key overwrote count without being written).
     *
     * @throws BackingBlockSizeException if the backing device cannot take 512-byte aligned I/O (nothing is written)
     */
    public Recovery recover(BackingDevice backing, LongConsumer progress) throws IOException, InterruptedException {
        BackingBlockSizeException.requireSectorIo(backing.alignment());
        if (backingSize != Long.MAX_VALUE && backing.size() < backingSize) {
            throw new IllegalArgumentException("backing device of " + backing.size() + " bytes is smaller than "
                    + backingSize);
        }
        KsetWriteback writer = new KsetWriteback(device.region(), backing, device.cacheInfo().dataCrc(),
                CacheOptions.WRITEBACK_TIMEOUT_DEFAULT);
        long[] done = new long[3];
        KsetLog.walk(device, reader, device.dirtyTail(), (pos, status, dirty) -> {
            if (status == KsetOnMedia.Status.NORMAL) {
                writer.clear();
                writer.load(reader);
                done[1] += writer.write(() -> CacheOptions.WRITEBACK_DEPTH_DEFAULT);
                done[0]++;
                done[2] += writer.dirtyBytes();
                progress.accept(done[2]);
            }
        });
        return new Recovery(done[0], done[1]);
    }

    /** Bytes of live dirty key records from dirty_tail to the end of the log: what {@link #recover} writes at most. */
    public long dirtyBytes() throws CorruptMediaException {
        long[] dirty = {0};
        walk(kset -> {
            if (kset.dirty()) {
                for (LoggedKey key : kset.keys()) {
                    dirty[0] += key.kind() != Kind.DATA || key.stale() ? 0 : key.len();
                }
            }
        });
        return dirty[0];
    }

    private List<LoggedKey> keys(KsetOnMedia.Status status) throws CorruptMediaException {
        if (status == KsetOnMedia.Status.LAST) {
            return List.of();
        }
        List<LoggedKey> keys = new ArrayList<>(reader.keyNum());
        for (int i = 0; i < reader.keyNum(); i++) {
            CacheKey key = reader.key(i);
            if (key.isDataless()) {
                keys.add(new LoggedKey(key.off, key.len, false, -1, 0, 0, 0, false, Kind.of(key)));
            } else {
                keys.add(new LoggedKey(key.off, key.len, key.isClean(), key.seg.id(), key.segOff, key.segGen,
                        reader.recordedCrc(i), key.segGen < key.seg.gen(), Kind.of(key)));
            }
        }
        return keys;
    }

    private void checkKeys(boolean dataCrc, List<String> problems) {
        for (int i = 0; i < reader.keyNum(); i++) {
            try {
                CacheKey key = reader.key(i);
                if (dataCrc && !key.isDataless() && key.segGen == key.seg.gen()) {
                    reader.verifyCrc(i, key);
                }
            } catch (CorruptMediaException e) {
                problems.add(e.getMessage());
            }
        }
    }
}
