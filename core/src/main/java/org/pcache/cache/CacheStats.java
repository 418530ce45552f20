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
}
