package org.pcache.cache;

import org.pcache.pmem.Crc32c;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;

/**
 * The write path (dm-pcache's cache_write): each piece of a request, cut at 4 MiB stretch and segment ends, gets space
 * from a data head, its data is copied into the region, and its key is appended to the stretch's kset and inserted
 * into the index. Write-zeroes, discards and invalidations take no data space: each 4 MiB piece is one data-less key,
 * appended and applied to the index the same way.
 *
 * <p>Persistence order: the data copy is flushed and drained by the kset close that makes its key durable (rule 1,
 * see {@link Kset}); a FUA write closes the kset of every piece before it completes (a FUA request of data-less keys
 * closes every kset once, after its last piece). cache_info carries the
 * DATALESS_KEYS mark, persisted, before the first data-less key is appended, so no kset holds one in an image without
 * the mark.
 *
 * <p>A request that finds the cache full (no data segment, or no segment to extend the kset log) waits in
 * {@link DeferredRequests} and resumes at the piece that failed; it never fails for lack of space.
 *
 * <p>Threading: runs on the caller's thread, or on the retry executor when deferred. The append and the insert happen
 * under the subtree lock, in that order, so a key is in the index only once its kset holds it and log order equals
 * index order within a stretch.
 */
final class CacheWrite {

    /** A write-through write's {@code onDirty} once it ran: count a request once. */
    private static final Runnable NOTHING = () -> { };

    private final PmemRegion region;
    private final KeyTree tree;
    private final DataHeads heads;
    private final Ksets ksets;
    private final SegmentMap segments;
    private final DeferredRequests deferred;
    private final Runnable onFull;
    private final Runnable markDataless;
    private final boolean dataCrc;

    /**
     * {@code onFull} runs each time a request starts waiting for space (it must only signal); {@code markDataless}
     * before every request of data-less keys (it persists the cache_info mark the first time, see
     * {@link org.pcache.pmem.CacheDevice#markDatalessKeys}).
     */
    CacheWrite(PmemRegion region, KeyTree tree, DataHeads heads, Ksets ksets, SegmentMap segments,
               DeferredRequests deferred, Runnable onFull, Runnable markDataless, boolean dataCrc) {
        this.region = region;
        this.markDataless = markDataless;
        this.tree = tree;
        this.heads = heads;
        this.ksets = ksets;
        this.segments = segments;
        this.deferred = deferred;
        this.onFull = onFull;
        this.dataCrc = dataCrc;
    }

    /** Writes {@code src} at {@code off}; {@code done} completes when the data is in the cache. */
    void write(long off, MemorySegment src, Durability durability, CompletableFuture<Void> done) {
        new Progress(off, src.byteSize(), src, 0, durability, done).run();
    }

    /**
     * Writes {@code src} at {@code off} as CLEAN keys: the backing device holds the same data already (write-through).
     * A piece whose range holds a dirty key is written dirty instead ({@code onDirty} runs once for the request), so
     * writeback copies it after the older dirty data; a piece that replaces a CLEAN key is made durable before the
     * write completes, so the older clean copy cannot come back after a crash.
     */
    void writeClean(long off, MemorySegment src, Durability durability, CompletableFuture<Void> done,
                    Runnable onDirty) {
        Progress progress = new Progress(off, src.byteSize(), src, 0, durability, done);
        progress.onDirty = onDirty;
        progress.run();
    }

    /** Makes {@code [off, off + length)} read as zeroes with ZERO keys: no data, written back as a write-zeroes. */
    void writeZeroes(long off, long length, Durability durability, CompletableFuture<Void> done) {
        new Progress(off, length, null, CacheKey.FLAG_ZERO, durability, done).run();
    }

    /** Discards {@code [off, off + length)} with DISCARD keys: it reads as zeroes and is written back as a discard. */
    void discard(long off, long length, Durability durability, CompletableFuture<Void> done) {
        new Progress(off, length, null, CacheKey.FLAG_DISCARD, durability, done).run();
    }

    /**
     * Drops {@code [off, off + length)} from the cache, persistently, with INVALIDATE keys: the range leaves the index
     * at once (reads go to the backing device), replay drops it again, and writeback sends nothing for it.
     */
    void invalidate(long off, long length, Durability durability, CompletableFuture<Void> done) {
        new Progress(off, length, null, CacheKey.FLAG_INVALIDATE, durability, done).run();
    }

    /** One request's progress: data from {@code src}, or (src null) data-less keys of kind {@code dataless}. */
    private final class Progress implements DeferredRequests.Waiter {
        private final long off;
        private final long length;
        private final MemorySegment src;
        private final int dataless;
        private final Durability durability;
        private final CompletableFuture<Void> done;
        /** Non-null for a write-through write: its pieces are CLEAN unless they cover dirty data (then it runs). */
        private Runnable onDirty;
        private long pos;

        Progress(long off, long length, MemorySegment src, int dataless, Durability durability,
                 CompletableFuture<Void> done) {
            this.off = off;
            this.length = length;
            this.src = src;
            this.dataless = dataless;
            this.durability = durability;
            this.done = done;
        }

        void run() {
            try {
                if (src == null) {
                    markDataless.run();
                }
                while (pos < length) {
                    long epoch = deferred.freeEpoch();
                    int written = src == null ? appendDataless(off + pos, length - pos, dataless)
                            : writePiece(off + pos, src, pos, length - pos, durability, this);
                    if (written == 0) {
                        waitForSpace(epoch);
                        return;
                    }
                    pos += written;
                }
                // Data-less keys of a FUA request go out together: one close of every kset, not one per 4 MiB.
                long epoch = deferred.freeEpoch();
                if (src == null && durability == Durability.FUA && !ksets.closeAll(false)) {
                    waitForSpace(epoch);
                    return;
                }
                done.complete(null);
            } catch (RuntimeException e) {
                done.completeExceptionally(e);
            }
        }

        private void waitForSpace(long epoch) {
            if (deferred.defer(this, epoch)) {
                onFull.run();
            }
        }

        @Override
        public void retry() {
            run();
        }

        /** Whether the piece at {@code [from, to)} of {@code subtree} (locked) is kept CLEAN; counts dirty ones. */
        boolean keepsClean(KeySubtree subtree, long from, long to) {
            if (onDirty == null) {
                return false;
            }
            if ((subtree.liveKinds(from, to) & KeySubtree.LIVE_DIRTY) == 0) {
                return true;
            }
            onDirty.run();
            onDirty = NOTHING;
            return false;
        }

        @Override
        public void fail(IOException error) {
            done.completeExceptionally(error);
        }
    }

    /**
     * Appends a data-less key of kind {@code flag} for the first piece of {@code [off, off + available)}, up to the end
     * of its 4 MiB stretch, and applies it to the index (an INVALIDATE key only cuts what it overlaps). Returns the
     * bytes covered, 0 when the kset log is full.
     */
    private int appendDataless(long off, long available, int flag) {
        int len = (int) Math.min(available, KeyTree.stretchEnd(off) - off);
        CacheKey key = CacheKey.dataless(off, len, flag);
        KeySubtree subtree = tree.subtree(off);
        synchronized (subtree) {
            if (!ksets.append(key, Durability.BUFFERED)) {
                return 0;
            }
            subtree.insert(key);
            if (key.isInvalidation()) {
                subtree.remove(key);
            }
        }
        return len;
    }

    /**
     * Writes the first piece of {@code [off, off + available)} from {@code src} at {@code srcOff}: up to the end of its
     * 4 MiB stretch and of the data head's segment. Returns the bytes written, 0 when the cache is full.
     */
    private int writePiece(long off, MemorySegment src, long srcOff, long available, Durability durability,
                           Progress progress) {
        int len = (int) Math.min(available, KeyTree.stretchEnd(off) - off);
        CacheKey key = new CacheKey(off, len, 0);
        int placed = heads.allocate(key, len);
        if (placed == 0) {
            return 0;
        }
        key.len = placed;
        long at = key.dataRegionOffset();
        region.write(at, src, srcOff, placed);
        if (dataCrc) {
            key.crc = new DataCrc(key.segOff, placed, Crc32c.crc(region.view(at, placed), 0, placed));
        }
        KeySubtree subtree = tree.subtree(off);
        boolean appended;
        synchronized (subtree) {
            Durability keyDurability = durability;
            if (progress.keepsClean(subtree, off, off + placed)) {
                key.flags = CacheKey.FLAG_CLEAN;
                if (subtree.liveKinds(off, off + placed) != 0) {
                    keyDurability = Durability.FUA;
                }
            }
            appended = ksets.append(key, keyDurability);
            if (appended) {
                subtree.insert(key);
            }
        }
        if (!appended) {
            segments.release(key.seg); // the key record will never exist
            return 0;
        }
        return placed;
    }
}
