package org.pcache.cache;

import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.BackingOp;
import org.pcache.backing.BackingRequest;
import org.pcache.backing.MemoryRequest;
import org.pcache.backing.RangeRequest;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Writes that reach the backing device before they complete: bypassing writes (write-around, pass-through, the
 * sequential cutoff) go there only, write-through writes go there and then into the cache
 * as clean ({@link CacheWrite#writeClean}).
 *
 * <p>The ordering rule: the backing device never ends with older data over newer. Writeback copies every dirty key of
 * the log to the backing device, in log order, whatever the index says now, so a write must not go past the cache
 * while the cache holds data of its range: an older dirty key would later be copied over it, and a clean key (a miss
 * fill, a write-through copy) that survives a crash would be read instead of it. Such a write goes into the cache as
 * a write-back write instead (counted in {@link CacheStats#cachedInstead}). Every dirty key not yet written back is
 * in the index, or under a newer dirty key there (clean keys only ever land in gaps, {@link MissFills}), so looking at
 * the index is enough.
 *
 * <p>Concurrent readers: a miss read of the range that was in flight while the backing write ran may have read the
 * old data. Once the backing write completed, and before the write completes, every EMPTY placeholder of the range is
 * removed, so such a fill never lands; when one landed meanwhile (or a cache write of the range came in between),
 * the write goes into the cache as well, after what is there, so the newest data is the cache's and is written back.
 *
 * <p>Durability: a bypassing write is durable on the backing device once the backing device is flushed: at once for
 * FUA, otherwise by the next {@link Pcache#flushAsync() flush}, which flushes the backing device when
 * {@link #hasUnflushed} says a write reached it since. A write-through write always flushes the backing device before
 * its CLEAN copy goes into the cache: a clean key says the backing device holds its data, and the key may become
 * durable (a kset closed by its timer) before any client flush.
 *
 * <p>Persistence rule for clean keys: no CLEAN key may become durable while the backing data it copies could still be
 * lost. Miss fills copy what the backing device returned, which may be a bypassing write not flushed yet; so while
 * {@link #hasUnflushed} is true, reads do not fill ({@link Pcache} asks before each read). Counting: {@code written}
 * counts backing writes completed, {@code flushedUpTo} the count a completed backing flush covers (taken when the
 * flush was sent, so a write that completes during the flush is not covered).
 *
 * <p>Threading: starts on the caller's thread; the rest runs on the backing device's completion worker.
 */
final class BypassWrite {

    private final KeyTree tree;
    private final BackingDevice backing;
    private final CacheWrite writes;
    private final CacheStats stats;
    /** Backing writes past the cache completed so far. */
    private final AtomicLong written = new AtomicLong();
    /** The value of {@link #written} the last completed backing flush covers. */
    private final AtomicLong flushedUpTo = new AtomicLong();

    BypassWrite(KeyTree tree, BackingDevice backing, CacheWrite writes, CacheStats stats) {
        this.tree = tree;
        this.backing = backing;
        this.writes = writes;
        this.stats = stats;
    }

    /** Writes {@code src} (null: {@code length} zero bytes) at {@code off} to the backing device only. */
    void bypass(long off, long length, MemorySegment src, Durability durability, CompletableFuture<Void> done) {
        if (holdsData(off, length, KeySubtree.LIVE_CLEAN | KeySubtree.LIVE_DIRTY)) {
            cacheInstead(off, length, src, durability, done);
            return;
        }
        toBacking(off, length, src, durability, done, () -> {
            if (settle(off, length)) {
                cacheInstead(off, length, src, durability, done);
            } else {
                done.complete(null);
            }
        });
    }

    /**
     * Writes {@code src} at {@code off} to the backing device, then into the cache as clean; into the cache as a
     * write-back write only when it holds dirty data of the range.
     */
    void writeThrough(long off, MemorySegment src, Durability durability, CompletableFuture<Void> done) {
        if (holdsData(off, src.byteSize(), KeySubtree.LIVE_DIRTY)) {
            cacheInstead(off, src.byteSize(), src, durability, done);
            return;
        }
        toBacking(off, src.byteSize(), src, Durability.FUA, done, () -> writes.writeClean(off, src, durability, done,
                stats.cachedInstead::increment));
    }

    /** Whether a write reached the backing device past the cache that no completed backing flush covers yet. */
    boolean hasUnflushed() {
        return flushedUpTo.get() != written.get();
    }

    /** Flushes the backing device; once it completed, every bypassing write completed before this call is durable. */
    CompletableFuture<Void> flushBacking() {
        long upTo = written.get();
        return backing.flushAsync().thenRun(() -> flushedUpTo.accumulateAndGet(upTo, Math::max));
    }

    private void cacheInstead(long off, long length, MemorySegment src, Durability durability,
                              CompletableFuture<Void> done) {
        stats.cachedInstead.increment();
        if (src == null) {
            writes.writeZeroes(off, length, durability, done);
        } else {
            writes.write(off, src, durability, done);
        }
    }

    /** Sends the write; once it (and for FUA a backing flush) completed, runs {@code then}, or fails {@code done}. */
    private void toBacking(long off, long length, MemorySegment src, Durability durability,
                           CompletableFuture<Void> done, Runnable then) {
        BackingCompletion completion = (request, error) -> {
            if (error != null) {
                done.completeExceptionally(error);
                return;
            }
            written.incrementAndGet();
            if (durability == Durability.FUA) {
                flushBacking().whenComplete((ignored, flushError) -> {
                    if (flushError != null) {
                        done.completeExceptionally(flushError);
                    } else {
                        run(then, done);
                    }
                });
            } else {
                run(then, done);
            }
        };
        BackingRequest request = src == null
                ? new RangeRequest(BackingOp.WRITE_ZEROES, off, length, completion)
                : new MemoryRequest(BackingOp.WRITE, src, off, completion);
        try {
            backing.submit(request);
        } catch (IllegalStateException e) {
            done.completeExceptionally(new BackingIoException(BackingIoException.Reason.STOPPED, "write", off, length,
                    e.getMessage(), e));
        }
    }

    private static void run(Runnable then, CompletableFuture<Void> done) {
        try {
            then.run();
        } catch (RuntimeException e) {
            done.completeExceptionally(e);
        }
    }

    /** Whether a live key overlapping {@code [off, off + length)} is of a kind in {@code kinds}. */
    private boolean holdsData(long off, long length, int kinds) {
        long end = off + length;
        for (long pos = off; pos < end; pos = KeyTree.stretchEnd(pos)) {
            KeySubtree subtree = tree.subtree(pos);
            synchronized (subtree) {
                if ((subtree.liveKinds(pos, Math.min(end, KeyTree.stretchEnd(pos))) & kinds) != 0) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * After the backing write: removes the range's EMPTY placeholders (miss reads that may have read the old data
     * will not be kept); true when a key with data came into the range meanwhile.
     */
    private boolean settle(long off, long length) {
        long end = off + length;
        boolean cached = false;
        for (long pos = off; pos < end; pos = KeyTree.stretchEnd(pos)) {
            long pieceEnd = Math.min(end, KeyTree.stretchEnd(pos));
            KeySubtree subtree = tree.subtree(pos);
            synchronized (subtree) {
                subtree.removeIf(pos, pieceEnd, CacheKey::isEmpty);
                cached |= subtree.liveKinds(pos, pieceEnd) != 0;
            }
        }
        return cached;
    }
}
