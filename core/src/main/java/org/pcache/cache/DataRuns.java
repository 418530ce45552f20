package org.pcache.cache;

import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

/**
 * Where the data of a kset's pending keys lies in the region, as runs of nearby ranges: what the kset's close must
 * flush before its drain (rule 1). A data head hands out consecutive space, so the keys of one kset lie close together
 * even when keys of other ksets sit between them; a range within {@link #MERGE_GAP} of a run joins it, and a kset of
 * 128 keys needs about one flush per data head instead of 128.
 *
 * <p>A run may cover more than the pending keys (a key whose append failed, a close that found the log full): flushing
 * more than needed is always safe, flushing less never is, so nothing is ever taken out of a run before the close
 * that flushed it succeeded.
 *
 * <p>Threading: owned by one {@link Kset} and used under its monitor.
 */
final class DataRuns {

    /**
     * Ranges this close to a run join it, gap included. Smaller than the 64 KiB chunks in which an msync region
     * records flushes, so on such a region the gap costs nothing; on a MAP_SYNC region it costs writing back lines
     * that are clean or belong to other ksets' keys, which is harmless.
     */
    static final long MERGE_GAP = 32 * 1024;

    private final long[] starts = new long[KsetOnMedia.KEYS_MAX];
    private final long[] ends = new long[KsetOnMedia.KEYS_MAX];
    private int count;

    /** Adds {@code [offset, offset + length)} of the region. */
    void add(long offset, long length) {
        long end = offset + length;
        for (int i = count - 1; i >= 0; i--) {
            if (offset <= ends[i] + MERGE_GAP && end >= starts[i] - MERGE_GAP) {
                starts[i] = Math.min(starts[i], offset);
                ends[i] = Math.max(ends[i], end);
                return;
            }
        }
        if (count == starts.length) {
            // More runs than a kset has keys: only after failed closes; fold into the last run (over-flushing).
            starts[count - 1] = Math.min(starts[count - 1], offset);
            ends[count - 1] = Math.max(ends[count - 1], end);
            return;
        }
        starts[count] = offset;
        ends[count] = end;
        count++;
    }

    /** Flushes every run; durable after the region's next drain. */
    void flush(PmemRegion region) {
        for (int i = 0; i < count; i++) {
            region.flush(starts[i], ends[i] - starts[i]);
        }
    }

    /** Forgets every run, once a close made them durable. */
    void clear() {
        count = 0;
    }

    int count() {
        return count;
    }
}
