package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;

import java.util.Arrays;
import java.util.BitSet;

/**
 * Rebuilds the cache's memory from the kset log at open (dm-pcache's cache_replay): walks from key_tail to the end of
 * the log ({@link KsetLog}), marking the segments in use, taking one reference per live key record and collecting the
 * live keys per subtree in log order; then loads each subtree with its keys ({@link KeySubtree#load}), which leaves
 * the index as inserting them one by one in log order would (the newest write wins), and drops the INVALIDATE keys,
 * which only cut what came before them. Data-less keys take no segment reference and get their kset's log sequence
 * number as their birth ({@link CacheKey}). Where the walk ends is the key head.
 *
 * <p>Anything wrong — a kset or key failing a hardening check ({@link KsetReader}), a LAST chain hopping more than
 * n_segs times, dirty_tail not on the walked chain, a live key whose data CRC does not match — stops the open with a
 * {@link CorruptMediaException} before anything is written. Beyond dm-pcache, no segment may be both in the walked log
 * and named by a live key: a LAST kset chaining into cached data would otherwise put the key head there, and the next
 * kset would overwrite that data.
 *
 * <p>Stale keys (generation older than their segment's) hold no reference and are not loaded; GC skips them the same
 * way, which keeps every segment's reference count equal to its live key records. A stale key still cuts the older
 * keys of its range, as an INVALIDATE key does: GC invalidates a segment before key_tail passes the ksets it
 * reclaimed, so after a crash in between, the walk meets those keys again, the newer ones possibly stale and older
 * ones (data-less, or in a segment still in use) live; without the cut an older key would shadow the written-back
 * newer data.
 *
 * <p>Threading: runs once, on the opening thread, before the cache is shared.
 */
final class Replay {

    private static final int INITIAL_PENDING = 16;

    private final CacheDevice device;
    private final SegmentMap segments;
    private final KeyTree tree;
    private final KsetReader reader;
    private final boolean dataCrc;
    /** Segments the walked log occupies, and segments live keys point into: a segment is never both. */
    private final BitSet logSegs = new BitSet();
    private final BitSet dataSegs = new BitSet();
    /** Per subtree, the live keys the walk found for it so far, in log order; null for none. */
    private final CacheKey[][] pending;
    private final int[] pendingCount;
    /** Per segment, the live key records the walk found in it: the references it takes once the walk is done. */
    private final int[] liveRecords;
    private long ksets;
    private long keys;
    private long staleKeys;
    private long dirtyBytes;
    private long cleanKsets;
    private long walkedKsets;

    Replay(CacheDevice device, SegmentMap segments, KeyTree tree, long backingSize, boolean dataCrc) {
        this.device = device;
        this.segments = segments;
        this.tree = tree;
        this.reader = new KsetReader(device, segments, backingSize);
        this.dataCrc = dataCrc;
        this.pending = new CacheKey[tree.subtreeCount()][];
        this.pendingCount = new int[tree.subtreeCount()];
        this.liveRecords = new int[segments.count()];
    }

    /** Replays the log; returns the key head. */
    CachePos run() throws CorruptMediaException {
        segments.markLog(device.keyTail().seg());
        logSegs.set(device.keyTail().seg());
        CachePos head = KsetLog.read(device, reader, device.keyTail(), (pos, status, dirty) -> {
            walkedKsets++;
            if (!dirty) {
                cleanKsets++;
            }
            if (status == KsetOnMedia.Status.LAST) {
                int next = reader.next().seg();
                if (dataSegs.get(next)) {
                    throw corrupt(pos, 0, "kset at " + pos, "next_cache_seg_id", "a segment holding no live keys",
                            "segment " + next + ", which holds live keys");
                }
                segments.markLog(next);
                logSegs.set(next);
            } else {
                replayKeys(pos, dirty);
                ksets++;
            }
        });
        loadIndex();
        retainSegments();
        return head;
    }

    long ksets() {
        return ksets;
    }

    long keys() {
        return keys;
    }

    long staleKeys() {
        return staleKeys;
    }

    /**
     * The log sequence number of dirty_tail: ksets (LAST ones included) from key_tail to it. Log sequence numbers
     * count ksets from key_tail as of this open, so they only grow while the cache runs, unlike positions.
     */
    long dirtyTailSeq() {
        return cleanKsets;
    }

    /** The log sequence number of the key head: every kset walked from key_tail. */
    long keyHeadSeq() {
        return walkedKsets;
    }

    /** Bytes of dirty key records between dirty_tail and the key head: what writeback still has to do. */
    long dirtyBytes() {
        return dirtyBytes;
    }

    private void replayKeys(CachePos pos, boolean dirty) throws CorruptMediaException {
        int keyNum = reader.keyNum();
        for (int i = 0; i < keyNum; i++) {
            CacheKey key = reader.key(i);
            if (key.isDataless()) {
                key.segGen = walkedKsets - 1; // its birth: this kset's log sequence number
                collect(key);
                keys++;
                continue;
            }
            CacheSegment seg = key.seg;
            if (key.segGen < seg.gen()) {
                // Still cuts the older keys of its range: it was written back before its segment moved on, so the
                // backing device holds its data or newer, and an older key (a data-less one, or one in a segment
                // that did not move on) must not come back over it.
                staleKeys++;
                CacheKey cutter = CacheKey.dataless(key.off, key.len, CacheKey.FLAG_INVALIDATE);
                cutter.segGen = walkedKsets - 1;
                collect(cutter);
                continue;
            }
            if (logSegs.get(seg.id())) {
                throw corrupt(pos, KsetOnMedia.keyOffset(i), "key " + i + " of kset at " + pos, "cache_seg_id",
                        "a data segment", "kset log segment " + seg.id());
            }
            if (dataCrc) {
                reader.verifyCrc(i, key);
                key.crc = new DataCrc(key.segOff, key.len, reader.recordedCrc(i));
            }
            if (dirty && key.isDirty()) {
                dirtyBytes += key.len;
            }
            collect(key);
            if (!dataSegs.get(seg.id())) {
                dataSegs.set(seg.id());
                segments.markUsed(seg.id());
            }
            liveRecords[seg.id()]++;
            keys++;
        }
    }

    private void collect(CacheKey key) {
        int subtree = KeyTree.subtreeIndex(key.off);
        CacheKey[] found = pending[subtree];
        int n = pendingCount[subtree];
        if (found == null) {
            found = new CacheKey[INITIAL_PENDING];
            pending[subtree] = found;
        } else if (n == found.length) {
            found = Arrays.copyOf(found, n * 2);
            pending[subtree] = found;
        }
        found[n] = key;
        pendingCount[subtree] = n + 1;
    }

    private void loadIndex() {
        for (int i = 0; i < pending.length; i++) {
            if (pending[i] != null) {
                KeySubtree subtree = tree.subtreeAt(i);
                subtree.load(pending[i], pendingCount[i]);
                subtree.removeIf(0, Long.MAX_VALUE, CacheKey::isInvalidation);
                pending[i] = null;
            }
        }
    }

    private void retainSegments() {
        for (int id = 0; id < liveRecords.length; id++) {
            if (liveRecords[id] > 0) {
                segments.segment(id).retain(liveRecords[id]);
            }
        }
    }

    private CorruptMediaException corrupt(CachePos pos, long offset, String record, String field, String expected,
                                          String found) {
        return new CorruptMediaException(record, device.physicalSegmentId(pos.seg()),
                device.dataOffset(pos.seg()) + pos.off() + offset, field, expected, found);
    }
}
