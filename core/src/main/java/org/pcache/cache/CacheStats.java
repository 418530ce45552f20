package org.pcache.cache;

import java.util.concurrent.atomic.LongAdder;

/**
 * Counters of what the cache did since it was opened. Updated on the data path without locks; read by
 * {@link Pcache#status()}.
 */
final class CacheStats {

    final LongAdder reads = new LongAdder();
    final LongAdder writes = new LongAdder();
    final LongAdder flushes = new LongAdder();
    final LongAdder readHitsFull = new LongAdder();
    final LongAdder readHitsPartial = new LongAdder();
    final LongAdder readMisses = new LongAdder();
    final LongAdder bytesRead = new LongAdder();
    final LongAdder bytesWritten = new LongAdder();
    final LongAdder bytesFromCache = new LongAdder();
    final LongAdder bytesFromBacking = new LongAdder();
    final LongAdder missFills = new LongAdder();
    final LongAdder dataCrcErrors = new LongAdder();
    /** Requests that bypassed the cache, by {@link BypassReason#ordinal()}. */
    final LongAdder[] bypassRequests = adders(BypassReason.values().length);
    /** Their bytes, by {@link BypassReason#ordinal()}. */
    final LongAdder[] bypassBytes = adders(BypassReason.values().length);
    /**
     * Writes meant for the backing device (bypassing or write-through) written into the cache as write-back writes
     * instead, because the cache held data of their range that writeback could later copy over them.
     */
    final LongAdder cachedInstead = new LongAdder();

    void bypassed(BypassReason reason, long bytes) {
        bypassRequests[reason.ordinal()].increment();
        bypassBytes[reason.ordinal()].add(bytes);
    }

    private static LongAdder[] adders(int n) {
        LongAdder[] adders = new LongAdder[n];
        for (int i = 0; i < n; i++) {
            adders[i] = new LongAdder();
        }
        return adders;
    }
}
