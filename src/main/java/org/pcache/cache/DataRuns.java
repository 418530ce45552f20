package org.pcache.cache;

import org.pcache.pmem.KsetOnMedia;
import org.pcache.pmem.PmemRegion;

/**
 * Where the data of a kset's pending keys lies in the region, as runs of touching ranges: what the kset's close must
 * flush before its drain (rule 1). Keys written one after another from the same data head touch, so a kset of 128
 * keys usually needs a handful of flushes instead of 128.
 *
 * <p>A run may cover more than the pending keys (a key whose append failed, a close that found the log full): flushing
 * more than needed is always safe, flushing less never is, so nothing is ever taken out of a run before the close
 * that flushed it succeeded.
 *
 * <p>Threading: owned by one {@link KeySet} and used under its monitor.
 */
final class DataRuns {

    private final long[] starts = new long[KsetOnMedia.KEYS_MAX];
    private final long[] ends = new long[KsetOnMedia.KEYS_MAX];
    private int count;

    /** Adds {@code [offset, offset + length)} of the region. */
    void add(long offset, long length) {
        long end = offset + length;
        for (int i = count - 1; i >= 0; i--) {
            if (ends[i] == offset) {
                ends[i] = end;
                return;
            }
            if (starts[i] == end) {
                starts[i] = offset;
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
