package org.pcache.cache;

import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The kset log writer: the end of the log, where the next kset is written (dm-pcache's key_head and cache_kset_close): writes ksets
 * back to back, each followed by a zero terminator, and chains a new log segment with a LAST kset when the current one
 * is full.
 *
 * <p>Invariants: a kset of size S is written at the head only if S + 24 bytes remain in the segment's data area, so a
 * LAST kset always fits; the log read from key_tail always ends at an invalid header, never at a stale kset.
 *
 * <p>Persistence order, per kset:
 * <ol>
 *   <li>flush the data of the kset's keys, zero the 24 bytes after the kset, and drain — rule 2: the terminator is
 *       durable before the kset; rule 1: so is the data of its keys;</li>
 *   <li>the kset, persisted;</li>
 *   <li>only then {@link #position()} moves: writeback never reads a kset that is not durable.</li>
 * </ol>
 * When a new log segment is chained: its first header is zeroed and persisted (clearing an outdated kset), then the
 * LAST kset pointing at it is persisted without its magic (an old magic there is cleared first), then its magic alone,
 * then the head moves to its offset 0.
 *
 * <p>It also counts the bytes of dirty key records in the durable log that writeback has not written back yet.
 *
 * <p>Threading: writes are serialised by this object's monitor; {@link #position()} may be read from any thread.
 * {@code onKset} runs after each kset is durable, on the writing thread, under the caller's locks: it must only signal.
 */
final class KsetLogWriter {

    private static final int HEADER_SIZE = (int) KsetOnMedia.HEADER_SIZE;

    private final PmemRegion region;
    private final SegmentMap segments;
    private final MemorySegment lastStaging = MemorySegment.ofArray(new byte[HEADER_SIZE]);
    private final KsetOnMedia last = new KsetOnMedia().wrap(lastStaging);
    /** Guarded by this. */
    private CacheSegment seg;
    /** Guarded by this. */
    private int off;
    private volatile CachePos position;
    private final AtomicLong dirtyBytes;
    private final Runnable onKset;

    KsetLogWriter(PmemRegion region, SegmentMap segments, CachePos start, long dirtyBytes, Runnable onKset) {
        this.region = region;
        this.segments = segments;
        this.seg = segments.segment(start.seg());
        this.off = start.off();
        this.position = start;
        this.dirtyBytes = new AtomicLong(dirtyBytes);
        this.onKset = onKset;
    }

    /** Bytes of dirty key records in the durable log not yet written back (overwritten data included). */
    long dirtyBytes() {
        return dirtyBytes.get();
    }

    /** Writeback wrote back a kset holding {@code bytes} of dirty key records. */
    void writtenBack(long bytes) {
        dirtyBytes.addAndGet(-bytes);
    }

    /** Where the next kset goes; everything before it is durable. */
    CachePos position() {
        return position;
    }

    /**
     * Appends the sealed kset of {@code size} bytes in {@code kset}, whose dirty keys cover {@code dirty} bytes and
     * whose keys' data lies in {@code data}; false when the log needs a segment and none is free.
     */
    synchronized boolean write(MemorySegment kset, int size, long dirty, DataRuns data) {
        if (CacheDeviceLayout.SEGMENT_DATA_SIZE - off < size + HEADER_SIZE && !chainNewSegment()) {
            return false;
        }
        long at = seg.dataOffset() + off;
        data.flush(region);
        region.zero(at + size, HEADER_SIZE);
        region.flush(at + size, HEADER_SIZE);
        region.drain(); // rule 2: terminator before kset; rule 1: the keys' data before their kset
        region.write(at, kset, 0, size);
        region.persist(at, size);
        off += size;
        position = new CachePos(seg.id(), off);
        dirtyBytes.addAndGet(dirty);
        onKset.run();
        return true;
    }

    private boolean chainNewSegment() {
        CacheSegment next = segments.allocateLog();
        if (next == null) {
            return false;
        }
        region.zero(next.dataOffset(), HEADER_SIZE);
        region.persist(next.dataOffset(), HEADER_SIZE); // an outdated kset there must not extend the log
        last.sealLast(next.id());
        long at = seg.dataOffset() + off;
        // The magic goes in last, as one 8-byte store: a LAST kset torn with its magic but without its LAST flag
        // would read as a normal kset whose key_num (the next segment's id) overruns the segment. The old magic is
        // cleared first: after a crash the head can sit on a torn kset that kept one.
        long magicAt = at + KsetOnMedia.MAGIC_OFFSET;
        region.putLongRelease(magicAt, 0);
        region.persist(magicAt, Long.BYTES);
        region.write(at, lastStaging, 0, KsetOnMedia.MAGIC_OFFSET);
        long flagsOffset = KsetOnMedia.FLAGS_OFFSET;
        region.write(at + flagsOffset, lastStaging, flagsOffset, HEADER_SIZE - flagsOffset);
        region.persist(at, HEADER_SIZE);
        region.putLongRelease(magicAt, KsetOnMedia.MAGIC);
        region.persist(magicAt, Long.BYTES);
        seg = next;
        off = 0;
        position = new CachePos(seg.id(), off);
        return true;
    }
}
