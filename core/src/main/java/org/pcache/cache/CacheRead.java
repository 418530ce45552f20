package org.pcache.cache;

import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingOp;
import org.pcache.backing.SliceRequest;
import org.pcache.backing.UpperRequest;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;

/**
 * The read path (dm-pcache's cache_read and miss_read_end): hits are copied out of the region (a ZERO or DISCARD key is
 * a hit that reads as zeroes), gaps are read from the
 * backing device straight into the caller's buffer, and what a miss read brings back is kept as a CLEAN key by
 * {@link MissFills}.
 *
 * <p>A gap gets an EMPTY placeholder key until its fill lands. A write that overlaps the placeholder cuts or removes it
 * ({@link KeySubtree#insert}); the fill lands only into what is still EMPTY and in the index, so backing data never
 * shadows a newer write. A gap already covered by another read's placeholder is copied from that read's fill when its
 * data arrived, otherwise read again without a placeholder of its own.
 *
 * <p>Threading: the walk runs on the caller's thread under the subtree lock; backing reads are handed to the engine
 * on the caller's thread once the lock is released ({@link BackingDevice#submitInline}) and complete on the thread
 * the engine answers on (its I/O thread, an NBD client's reply reader), which copies the data aside for
 * {@link MissFills} (taking no cache lock) and completes the read: the reply goes out with no hand-over to another
 * worker, and the fill lands later, beside it, on {@code pcache-fill}.
 */
final class CacheRead {

    private final PmemRegion region;
    private final KeyTree tree;
    private final MissFills fills;
    private final BackingDevice backing;
    private final CacheStats stats;
    private final boolean dataCrc;
    /** Null when read-ahead is off. */
    private final ReadAhead readAhead;
    /** Read-aheads in flight; a stream that finds none free reads ahead at its next chance. */
    private final Semaphore readAheadSlots = new Semaphore(READ_AHEADS_IN_FLIGHT);

    /** Most read-aheads in flight at once (each holds a buffer of the read-ahead size). */
    static final int READ_AHEADS_IN_FLIGHT = 4;

    CacheRead(PmemRegion region, KeyTree tree, MissFills fills, BackingDevice backing, CacheStats stats,
              boolean dataCrc, long readAheadBytes) {
        this.region = region;
        this.tree = tree;
        this.fills = fills;
        this.backing = backing;
        this.stats = stats;
        this.dataCrc = dataCrc;
        this.readAhead = readAheadBytes == 0 ? null : new ReadAhead(readAheadBytes, backing.size());
    }

    /**
     * Reads {@code dst.byteSize()} bytes at {@code off} into {@code dst}; {@code done} completes when all arrived.
     * With {@code fill} false, gaps are read from the backing device and not kept (a bypassing read, which never
     * reads ahead).
     */
    void read(long off, MemorySegment dst, CompletableFuture<Void> done, boolean fill) {
        Walk walk = new Walk(off, dst, done, true, fill);
        if (walk(walk) && fill && readAhead != null) {
            long from = readAhead.next(off, dst.byteSize(), walk.missBytes > 0);
            if (from >= 0) {
                readAhead(from);
            }
        }
        walk.finish(walk.error);
    }

    /**
     * Reads {@code [from, from + window)} into a scratch buffer, so its gaps are filled into the cache as any miss's
     * are; started before the reader's own request ends, so a close waits for it to be submitted. Counted only as
     * bytes from the backing device, not as a client read.
     */
    private void readAhead(long from) {
        if (!readAheadSlots.tryAcquire()) {
            return;
        }
        long length = Math.min(readAhead.window(), backing.size() - from);
        CompletableFuture<Void> done = new CompletableFuture<>();
        done.whenComplete((ignored, error) -> readAheadSlots.release());
        Walk walk = new Walk(from, MemorySegment.ofArray(new byte[(int) length]), done, false, true);
        walk(walk);
        walk.finish(walk.error);
    }

    /** Runs {@code walk} over its range, submitting its misses; false when it failed (its error is then set). */
    private boolean walk(Walk walk) {
        long off = walk.off;
        MemorySegment dst = walk.dst;
        try {
            long end = off + dst.byteSize();
            for (long pos = off; pos < end; pos = KeyTree.stretchEnd(pos)) {
                KeySubtree subtree = tree.subtree(pos);
                synchronized (subtree) {
                    walk.run(subtree, pos, Math.min(end, KeyTree.stretchEnd(pos)));
                }
                walk.submitMisses();
            }
            walk.count();
            return true;
        } catch (CacheIoException | RuntimeException e) {
            walk.submitMisses();
            walk.error = e;
            return false;
        }
    }

    private static void complete(CompletableFuture<Void> done, Throwable error) {
        if (error == null) {
            done.complete(null);
        } else {
            done.completeExceptionally(error);
        }
    }

    /**
     * The state of one request's walk over its subtrees. The upper request that backing reads complete, and the list
     * of reads to submit, exist only once there is a miss: a read that hits entirely completes {@code done} itself.
     */
    private final class Walk {
        private final long off;
        private final MemorySegment dst;
        private final CompletableFuture<Void> done;
        private final boolean fill;
        /** A client's read (counted as one), or a read-ahead (only its backing bytes are counted). */
        private final boolean client;
        /** Why the walk failed, or null. */
        private Exception error;
        /** Created by the first miss; the walk owns its first reference until {@link #finish}. */
        private UpperRequest upper;
        private List<SliceRequest> misses;
        private long hitBytes;
        private long missBytes;

        Walk(long off, MemorySegment dst, CompletableFuture<Void> done, boolean client, boolean fill) {
            this.off = off;
            this.dst = dst;
            this.done = done;
            this.client = client;
            this.fill = fill;
        }

        /** Ends the walk's part of the request: completes it, or lets the last backing read do so. */
        void finish(Throwable error) {
            if (upper != null) {
                upper.release(error);
            } else {
                complete(done, error);
            }
        }

        private UpperRequest upper() {
            if (upper == null) {
                upper = new UpperRequest(off, dst, error -> complete(done, error));
                misses = new ArrayList<>(2);
            }
            return upper;
        }

        /** Serves {@code [start, end)} of one subtree: copies hits, collects backing reads for the rest. */
        void run(KeySubtree subtree, long start, long end) throws CacheIoException {
            long cursor = start;
            int i = subtree.firstEndingAfter(start);
            while (cursor < end) {
                if (i >= subtree.size() || subtree.keyAt(i).off >= end) {
                    miss(subtree, cursor, end);
                    return;
                }
                CacheKey key = subtree.keyAt(i);
                if (key.isStale() || (key.isEmpty() && fills.abandoned(key))) {
                    subtree.removeAt(i);
                    continue;
                }
                if (key.off > cursor) {
                    miss(subtree, cursor, key.off);
                    i++;
                    cursor = key.off;
                }
                long partEnd = Math.min(key.end(), end);
                if (key.isEmpty()) {
                    if (fills.copyPending(key, cursor, partEnd, dst, cursor - off)) {
                        hitBytes += partEnd - cursor;
                    } else {
                        rereadBehindPlaceholder(cursor, partEnd);
                    }
                } else if (key.readsZeroes()) {
                    dst.asSlice(cursor - off, partEnd - cursor).fill((byte) 0);
                    hitBytes += partEnd - cursor;
                } else if (!copyHit(key, cursor, partEnd)) {
                    subtree.removeAt(i);
                    continue;
                }
                cursor = partEnd;
                i++;
            }
        }

        /** A gap: an EMPTY placeholder holds its place in the index while the backing read runs. */
        private void miss(KeySubtree subtree, long from, long to) {
            if (!fill) {
                rereadBehindPlaceholder(from, to);
                return;
            }
            CacheKey placeholder = CacheKey.placeholder(from, (int) (to - from));
            subtree.insertPlaceholder(placeholder);
            UpperRequest request = upper();
            BackingCompletion fill = (backingRequest, error) ->
                    fills.completed(placeholder, (SliceRequest) backingRequest, error);
            misses.add(new SliceRequest(BackingOp.READ, request, from - off, to - from, fill));
            missBytes += to - from;
        }

        /**
         * Another read's miss is in flight for this range, or the read keeps nothing: read it from the backing device,
         * without a placeholder.
         */
        private void rereadBehindPlaceholder(long from, long to) {
            UpperRequest request = upper();
            misses.add(new SliceRequest(BackingOp.READ, request, from - off, to - from, BackingCompletion.NONE));
            missBytes += to - from;
        }

        /**
         * Copies a hit; false when the key's segment was reclaimed meanwhile (the key is then stale). The CRC is
         * computed inside the same optimistic read as the copy and judged only once the read validated, so a CRC
         * error means the media is bad, never that GC reused the segment under the reader.
         */
        private boolean copyHit(CacheKey key, long from, long to) throws CacheIoException {
            CacheSegment seg = key.seg;
            long stamp = seg.beginRead();
            if (stamp == 0 || key.segGen != seg.gen()) {
                return false;
            }
            long length = to - from;
            region.read(key.dataRegionOffset() + (from - key.off), dst, from - off, length);
            int crc = dataCrc ? dataCrc(key) : 0;
            if (!seg.validateRead(stamp)) {
                return false;
            }
            if (dataCrc) {
                verifyCrc(key, crc);
            }
            hitBytes += length;
            return true;
        }

        /**
         * Hands the backing reads to the engine on this thread; each completes where the engine reports it (a
         * refused one, with STOPPED, here), so no worker stands between the backing's data and the reply.
         */
        void submitMisses() {
            if (misses == null) {
                return;
            }
            for (SliceRequest miss : misses) {
                backing.submitInline(miss);
            }
            misses.clear();
        }

        void count() {
            if (!client) {
                stats.bytesFromBacking.add(missBytes);
                return;
            }
            stats.reads.increment();
            stats.bytesRead.add(hitBytes + missBytes);
            if (hitBytes > 0) {
                stats.bytesFromCache.add(hitBytes);
            }
            if (missBytes > 0) {
                stats.bytesFromBacking.add(missBytes);
            }
            if (missBytes == 0) {
                stats.readHitsFull.increment();
            } else if (hitBytes > 0) {
                stats.readHitsPartial.increment();
            } else {
                stats.readMisses.increment();
            }
        }
    }

    /** The CRC of the cached bytes {@code key}'s data CRC covers, as they are in the region now. */
    private int dataCrc(CacheKey key) {
        DataCrc crc = key.crc;
        return Crc32c.crc(region.view(key.seg.dataOffset() + crc.segOff(), crc.len()), 0, crc.len());
    }

    /** Fails the read when {@code actual}, the CRC of bytes read while the key was current, is not the key's. */
    private void verifyCrc(CacheKey key, int actual) throws CacheIoException {
        DataCrc crc = key.crc;
        if (actual != crc.value()) {
            stats.dataCrcErrors.increment();
            throw new CacheIoException("data CRC mismatch reading backing offset " + key.off + " from seg="
                    + key.seg.id() + " seg_off=" + crc.segOff() + " len=" + crc.len() + ": expected 0x"
                    + Integer.toHexString(crc.value()) + ", found 0x" + Integer.toHexString(actual));
        }
    }
}
