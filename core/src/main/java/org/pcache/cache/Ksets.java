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

    /**
     * Closes every kset: true when all pending keys are durable, false when the log is full. A client flush passes
     * {@code barrier}: the last kset it expects to write carries {@link org.pcache.pmem.KsetOnMedia#FLAG_BARRIER}
     * (the flush then checks with {@link KsetLogWriter#markBarrier} that a barrier ends the log).
     */
    boolean closeAll(boolean barrier) {
        int last = -1;
        for (int i = ksets.length - 1; barrier && i >= 0 && last < 0; i--) {
            if (ksets[i].pendingKeys() > 0) {
                last = i;
            }
        }
        boolean all = true;
        for (int i = 0; i < ksets.length; i++) {
            all &= ksets[i].close(i == last);
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

    /** Cancels the flush timers; called at close after a final {@link #closeAll(boolean)}. */
    void stopTimers() {
        for (Kset kset : ksets) {
            kset.stopTimer();
        }
    }

    private Kset forOffset(long off) {
        return ksets[(int) ((off >>> KeyTree.SUBTREE_SHIFT) % ksets.length)];
    }
}
