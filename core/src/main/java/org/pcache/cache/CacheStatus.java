package org.pcache.cache;

import org.pcache.backing.BackingConnection;
import org.pcache.pmem.CachePos;

/**
 * A snapshot of the cache: dm-pcache's nine status fields, then pcache's counters.
 *
 * @param sbFlags          superblock flags (bit 0: big-endian format)
 * @param segTotal         physical 16 MiB segments on the cache device
 * @param cacheSegs        segments the cache uses
 * @param segsUsed         segments holding data or log right now
 * @param gcPercent        GC starts when segsUsed reaches this percentage of cacheSegs
 * @param cacheFlags       cache_info flags (bit 0 DATA_CRC, bit 1 INIT_DONE, bits 2-5 cache mode, bits 6-12 gc_percent)
 * @param keyHead          where the next kset will be written
 * @param dirtyTail        first kset not yet written back
 * @param keyTail          first kset not yet reclaimed by GC
 * @param counters         what the cache did since it was opened
 * @param writeback        what writeback is doing
 * @param gc               what garbage collection is doing
 * @param health           healthy, or failed and why (nothing more is made durable; restart to replay)
 * @param backing          whether the backing device can be reached now (a remote one may be disconnected)
 * @param bypass           requests that went past the cache, by reason
 */
public record CacheStatus(int sbFlags, int segTotal, int cacheSegs, int segsUsed, int gcPercent, int cacheFlags,
                          CachePos keyHead, CachePos dirtyTail, CachePos keyTail, Counters counters,
                          WritebackStatus writeback, GcStatus gc, CacheHealth health,
                          BackingConnection backing, Bypass bypass) {

    /**
     * Requests that bypassed the cache since open (writes sent to the backing device only, reads whose misses were
     * not kept), by {@link BypassReason}, and the writes that were to bypass it but went into it.
     *
     * @param modeRequests       bypassed because of the cache mode
     * @param modeBytes          their bytes
     * @param sequentialRequests bypassed because their client's sequential run passed the cutoff
     * @param sequentialBytes    their bytes
     * @param cachedInstead      writes meant for the backing device (bypassing or write-through) written into the
     *                           cache as write-back writes, because it held data of their range that writeback
     *                           could otherwise have copied over them
     */
    public record Bypass(long modeRequests, long modeBytes, long sequentialRequests, long sequentialBytes,
                         long cachedInstead) {
    }

    /** The cache mode, from cache_flags bits 2-5. */
    public CacheMode mode() {
        return CacheMode.fromOnMedia(org.pcache.pmem.CacheInfo.fromFlags(0, 0, cacheFlags).cacheMode());
    }

    /**
     * Counters since open.
     *
     * @param reads            read requests
     * @param writes           write requests (write-zeroes included)
     * @param flushes          flush requests
     * @param readHitsFull     reads served entirely from the cache
     * @param readHitsPartial  reads served partly from the cache
     * @param readMisses       reads served entirely from the backing device
     * @param bytesRead        bytes read by clients
     * @param bytesWritten     bytes written by clients
     * @param bytesFromCache   bytes of reads copied from the cache
     * @param bytesFromBacking bytes of reads that came from the backing device
     * @param missFills        extents kept as CLEAN keys after a miss
     * @param deferred         times a request waited because the cache was full
     * @param waiting          requests waiting for free space now
     * @param dataCrcErrors    data CRC mismatches found
     */
    public record Counters(long reads, long writes, long flushes, long readHitsFull, long readHitsPartial,
                           long readMisses, long bytesRead, long bytesWritten, long bytesFromCache,
                           long bytesFromBacking, long missFills, long deferred, int waiting, long dataCrcErrors) {
    }

    /** dm-pcache's status line: the nine fields, space separated, flags in hex, positions as seg:off. */
    public String statusLine() {
        return Integer.toHexString(sbFlags) + " " + segTotal + " " + cacheSegs + " " + segsUsed + " " + gcPercent + " "
                + Integer.toHexString(cacheFlags) + " " + keyHead + " " + dirtyTail + " " + keyTail;
    }
}
