package org.pcache.cache;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingExtent;

/**
 * The cached device's allocation map (what NBD's {@code base:allocation} reports): the backing device's map, with
 * every range the cache holds data for (dirty or clean) counted as data, whatever the backing device has there. A
 * range the cache holds as zeroes or discarded (a data-less key) shows what the backing device has: a hole stays a
 * hole, since the range reads as zeroes either way. So a hole of a
 * sparse backing file shows as a hole until something is written to it or read into the cache, and dirty data that
 * writeback has not reached yet is data.
 *
 * <p>The answer is a snapshot: a write or a GC racing with it may change the map right after. A range the cache is
 * reading from the backing device (a placeholder in the index) is reported as the backing device has it.
 *
 * <p>Threading: any thread; each subtree is read under its monitor, like reads do.
 */
final class CacheAllocation {

    private final KeyTree tree;
    private final BackingDevice backing;

    CacheAllocation(KeyTree tree, BackingDevice backing) {
        this.tree = tree;
        this.backing = backing;
    }

    /**
     * The map of {@code [offset, offset + length)} from {@code offset}: at least one run, possibly fewer bytes than
     * asked when the backing device answered a prefix.
     */
    CompletableFuture<List<BackingExtent>> allocation(long offset, long length) {
        CompletableFuture<List<BackingExtent>> done = new CompletableFuture<>();
        backing.allocation(offset, length, (extents, error) -> {
            if (error != null) {
                done.completeExceptionally(error);
                return;
            }
            try {
                done.complete(merge(offset, extents, cached(offset, offset + length)));
            } catch (RuntimeException e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    /** The ranges the index holds data for in {@code [start, end)}, as sorted, merged {start, end} pairs. */
    private List<long[]> cached(long start, long end) {
        List<long[]> ranges = new ArrayList<>();
        for (long pos = start; pos < end; pos = Math.min(end, KeyTree.stretchEnd(pos))) {
            long stretchEnd = Math.min(end, KeyTree.stretchEnd(pos));
            KeySubtree subtree = tree.subtree(pos);
            synchronized (subtree) {
                for (int i = subtree.firstEndingAfter(pos); i < subtree.size(); i++) {
                    CacheKey key = subtree.keyAt(i);
                    if (key.off >= stretchEnd) {
                        break;
                    }
                    if (key.isEmpty() || key.isStale() || key.readsZeroes()) {
                        continue;
                    }
                    add(ranges, Math.max(pos, key.off), Math.min(stretchEnd, key.end()));
                }
            }
        }
        return ranges;
    }

    private static void add(List<long[]> ranges, long from, long to) {
        if (!ranges.isEmpty() && ranges.getLast()[1] == from) {
            ranges.getLast()[1] = to;
        } else {
            ranges.add(new long[] {from, to});
        }
    }

    /** {@code backing}'s runs from {@code offset}, with the {@code cached} ranges turned into data, runs merged. */
    static List<BackingExtent> merge(long offset, List<BackingExtent> backing, List<long[]> cached) {
        List<BackingExtent> merged = new ArrayList<>();
        int next = 0;
        long at = offset;
        for (BackingExtent extent : backing) {
            long end = at + extent.length();
            if (extent.kind() == BackingExtent.Kind.DATA) {
                append(merged, extent.length(), BackingExtent.Kind.DATA);
            } else {
                long cursor = at;
                while (cursor < end) {
                    while (next < cached.size() && cached.get(next)[1] <= cursor) {
                        next++;
                    }
                    long[] range = next < cached.size() ? cached.get(next) : null;
                    if (range == null || range[0] >= end) {
                        append(merged, end - cursor, BackingExtent.Kind.HOLE);
                        cursor = end;
                    } else if (range[0] > cursor) {
                        append(merged, range[0] - cursor, BackingExtent.Kind.HOLE);
                        cursor = range[0];
                    } else {
                        long dataEnd = Math.min(end, range[1]);
                        append(merged, dataEnd - cursor, BackingExtent.Kind.DATA);
                        cursor = dataEnd;
                    }
                }
            }
            at = end;
        }
        return merged;
    }

    private static void append(List<BackingExtent> merged, long length, BackingExtent.Kind kind) {
        if (!merged.isEmpty() && merged.getLast().kind() == kind) {
            merged.set(merged.size() - 1, new BackingExtent(merged.getLast().length() + length, kind));
        } else {
            merged.add(new BackingExtent(length, kind));
        }
    }
}
