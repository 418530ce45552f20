package org.pcache.cache;

/**
 * The kset streams. Keys of one 4 MiB stretch always go to the same stream ({@code (off >> 22) mod n}), so within a
 * stretch the log holds keys in the order they entered the index.
 */
final class Ksets {

    private final Kset[] ksets;

    Ksets(Kset[] ksets) {
        this.ksets = ksets.clone();
    }

    /** Appends {@code key} to its stream; false when its kset could not be closed because the log is full. */
    boolean append(CacheKey key, Durability durability) {
        return forOffset(key.off).append(key, durability);
    }

    /** Closes every kset (a flush): true when all pending keys are durable, false when the log is full. */
    boolean closeAll() {
        boolean all = true;
        for (Kset kset : ksets) {
            all &= kset.close();
        }
        return all;
    }

    /** Keys appended and not written out yet, in all streams. */
    int pendingKeys() {
        int pending = 0;
        for (Kset kset : ksets) {
            pending += kset.pendingKeys();
        }
        return pending;
    }

    /** Cancels the flush timers; called at close after a final {@link #closeAll()}. */
    void stopTimers() {
        for (Kset kset : ksets) {
            kset.stopTimer();
        }
    }

    private Kset forOffset(long off) {
        return ksets[(int) ((off >>> KeyTree.SUBTREE_SHIFT) % ksets.length)];
    }
}
