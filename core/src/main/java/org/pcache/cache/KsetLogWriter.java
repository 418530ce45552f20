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
 *   <li>the caller flushed the data of the kset's keys (outside this lock, see {@link Kset}); zero the 24 bytes after
 *       the kset, and drain — rule 2: the terminator is durable before the kset; rule 1: so is the data of its keys
 *       (the drain covers every flush made before it);</li>
 *   <li>the kset, persisted;</li>
 *   <li>only then {@link #position()} moves: writeback never reads a kset that is not durable.</li>
 * </ol>
 * When a new log segment is chained: its first header is zeroed and persisted (clearing an outdated kset), then the
 * LAST kset pointing at it is persisted without its magic (an old magic there is cleared first), then its magic alone,
 * then the head moves to its offset 0.
 *
 * <p>It also counts the bytes of dirty key records in the durable log that writeback has not written back yet, and
 * numbers the ksets: a log sequence number counts ksets (LAST ones included) from key_tail as of the open, so it only
 * grows, where a position comes round again once the log wraps. Positions are compared through these numbers only:
 * {@link #seq()} for the key head, {@link #dirtyTailSeq()} for dirty_tail.
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
    private final MemorySegment barrierStaging = MemorySegment.ofArray(new byte[HEADER_SIZE]);
    /** The latest normal kset written carries BARRIER; guarded by this. False at open: replay does not look. */
    private boolean lastBarrier;
    /** Guarded by this. */
    private CacheSegment seg;
    /** Guarded by this. */
    private int off;
    private volatile CachePos position;
    /** Log sequence number of position; written under this, after position. */
    private volatile long seq;
    /** Log sequence number of dirty_tail; written by writeback alone. */
    private volatile long dirtyTailSeq;
    private final AtomicLong dirtyBytes;
    private final Runnable onKset;

    /**
     * A writer whose head is {@code start}, log sequence number {@code startSeq}, with dirty_tail at log sequence
     * number {@code dirtyTailSeq} ({@link Replay} counts both).
     */
    KsetLogWriter(PmemRegion region, SegmentMap segments, CachePos start, long startSeq, long dirtyTailSeq,
                  long dirtyBytes, Runnable onKset) {
        this.region = region;
        this.segments = segments;
        this.seg = segments.segment(start.seg());
        this.off = start.off();
        this.position = start;
        this.seq = startSeq;
        this.dirtyTailSeq = dirtyTailSeq;
        this.dirtyBytes = new AtomicLong(dirtyBytes);
        this.onKset = onKset;
    }

    /** Bytes of dirty key records in the durable log not yet written back (overwritten data included). */
    long dirtyBytes() {
        return dirtyBytes.get();
    }

    /** Writeback moved dirty_tail past {@code ksets} ksets, which held {@code bytes} of dirty key records. */
    void writtenBack(long ksets, long bytes) {
        dirtyBytes.addAndGet(-bytes);
        dirtyTailSeq = dirtyTailSeq + ksets;
    }

    /** The log sequence number of {@link #position()}: every kset below it is durable. */
    long seq() {
        return seq;
    }

    /** The log sequence number of dirty_tail: every kset below it is written back. */
    long dirtyTailSeq() {
        return dirtyTailSeq;
    }

    /** Where the next kset goes; everything before it is durable. */
    CachePos position() {
        return position;
    }

    /**
     * Appends the sealed kset of {@code size} bytes in {@code kset}, whose dirty keys cover {@code dirty} bytes; the
     * caller flushed its keys' data before the call, on this thread. False when the log needs a segment and none is
     * free.
     */
    synchronized boolean write(MemorySegment kset, int size, long dirty, boolean barrier) {
        if (CacheDeviceLayout.SEGMENT_DATA_SIZE - off < size + HEADER_SIZE && !chainNewSegment()) {
            return false;
        }
        long at = seg.dataOffset() + off;
        region.zero(at + size, HEADER_SIZE);
        region.flush(at + size, HEADER_SIZE);
        region.drain(); // rule 2: terminator before kset; rule 1: the keys' data before their kset
        region.write(at, kset, 0, size);
        region.persist(at, size);
        off += size;
        position = new CachePos(seg.id(), off);
        seq = seq + 1;
        dirtyBytes.addAndGet(dirty);
        lastBarrier = barrier;
        onKset.run();
        return true;
    }

    /**
     * A client flush closed its ksets: makes sure the latest kset in the log is a BARRIER one, appending an empty
     * BARRIER kset when it is not (the flush closed nothing, or another kset came after its last one). So every write
     * completed before the flush lies before a BARRIER kset. False when the log is full.
     */
    synchronized boolean markBarrier() {
        if (lastBarrier) {
            return true;
        }
        int size = new KsetOnMedia().wrap(barrierStaging).sealKeys(0, true);
        return write(barrierStaging, size, 0, true);
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
        seq = seq + 1;
        return true;
    }
}
