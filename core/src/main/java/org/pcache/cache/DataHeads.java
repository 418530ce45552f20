package org.pcache.cache;

/** The data heads, striped by thread so concurrent writers rarely share one (dm-pcache keeps one per CPU). */
final class DataHeads {

    private final DataHead[] heads;

    DataHeads(SegmentMap segments, int count) {
        heads = new DataHead[count];
        for (int i = 0; i < count; i++) {
            heads[i] = new DataHead(segments);
        }
    }

    /** The head for the calling thread. */
    DataHead current() {
        return heads[(int) (Thread.currentThread().threadId() % heads.length)];
    }
}
