package org.pcache.admin;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.search.Search;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.pcache.cache.CacheMode;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.SegmentUse;
import org.pcache.pmem.CacheInfo;

/**
 * What {@code GET /status} returns and {@code pcache status --json} prints: dm-pcache's nine status fields by name,
 * each holding exactly the token of the status line (flags in hex, positions as {@code seg:off}), then pcache's
 * statistics. README.md ("What each status field means") documents every field; the names are a contract.
 *
 * @param sbFlags           superblock flags, hex
 * @param segTotal          physical segments on the cache device
 * @param cacheSegs         segments the cache uses
 * @param segsUsed          segments holding data or log now
 * @param gcPercent         GC threshold
 * @param cacheFlags        cache_info flags, hex
 * @param keyHead           where the next kset goes, seg:off
 * @param dirtyTail         first kset not written back, seg:off
 * @param keyTail           first kset not reclaimed by GC, seg:off
 * @param health            "healthy", or "failed": nothing more is made durable, writes and flushes get EIO
 * @param failure           what failed the cache, or null while healthy
 * @param dataCrc           cache_flags bit 0
 * @param cacheMode         cache_flags bits 2-5, by name
 * @param uptimeSeconds     time since the cache was opened
 * @param reads             read requests
 * @param writes            write requests, write-zeroes included
 * @param flushes           flush requests
 * @param readHitsFull      reads served wholly from the cache
 * @param readHitsPartial   reads served partly from the cache
 * @param readMisses        reads served wholly from the backing device
 * @param missFills         extents kept in the cache after a miss
 * @param bytesRead         bytes clients read
 * @param bytesWritten      bytes clients wrote
 * @param bytesFromCache    bytes of reads copied from the cache
 * @param bytesFromBacking  bytes of reads from the backing device
 * @param bytesToBacking    bytes writeback wrote to the backing device
 * @param dirtyBytes        bytes of dirty key records not yet written back
 * @param deferredRequests  times a request waited for free space
 * @param waitingRequests   requests waiting for free space now
 * @param dataCrcErrors     cache hits whose data did not match its CRC (the read failed)
 * @param writeback         what writeback is doing
 * @param gc                what garbage collection is doing
 * @param latency           per NBD command: count and p50/p99/max in microseconds
 * @param drain             the latest drain asked for through the endpoint
 * @param backing           whether the backing device can be reached now
 * @param segments          what each segment holds, one letter per logical id: {@code l} kset log, {@code d} data not all written back, {@code c} clean data (GC frees it),
 *                          {@code .} free
 * @param bypass            requests that went past the cache, by reason
 */
public record StatusDocument(String sbFlags, int segTotal, int cacheSegs, int segsUsed, int gcPercent,
                             String cacheFlags, String keyHead, String dirtyTail, String keyTail,
                             String health, String failure, boolean dataCrc, String cacheMode, double uptimeSeconds,
                             long reads, long writes, long flushes, long readHitsFull, long readHitsPartial,
                             long readMisses, long missFills, long bytesRead, long bytesWritten, long bytesFromCache,
                             long bytesFromBacking, long bytesToBacking, long dirtyBytes, long deferredRequests,
                             int waitingRequests, long dataCrcErrors, Writeback writeback, Gc gc,
                             Map<String, Latency> latency, Drain.Status drain, Backing backing, String segments,
                             Bypass bypass) {

    /**
     * Requests that went past the cache since open: writes to the backing device only, reads whose misses were not
     * kept.
     *
     * @param modeRequests       because of the cache mode
     * @param modeBytes          their bytes
     * @param sequentialRequests because their connection's sequential run passed the cutoff
     * @param sequentialBytes    their bytes
     * @param cachedInstead      writes meant for the backing device that went into the cache as write-back writes,
     *                           because it held data of their range
     */
    public record Bypass(long modeRequests, long modeBytes, long sequentialRequests, long sequentialBytes,
                         long cachedInstead) {
    }

    /**
     * Writeback.
     *
     * @param state              "running", "stopped", or "failed: " and why (WorkerState.toString)
     * @param ksets              ksets written back since open
     * @param errors             backing errors met (each retried)
     * @param lastError          the latest backing error, or null
     * @param rateBytesPerSecond recent throughput
     * @param batches            batches written back since open
     * @param backingFlushes     backing flushes writeback made since open (one per batch that wrote anything)
     * @param flushesPerGib      backing flushes per GiB written back since open
     * @param writesInFlight     backing writes of writeback in flight now
     * @param depth              backing writes writeback keeps in flight at most
     * @param lowPercent         percent of the data area dirty below which writeback idles
     * @param highPercent        percent dirty from which writeback runs at full depth
     */
    public record Writeback(String state, long ksets, long errors, String lastError, double rateBytesPerSecond,
                            long batches, long backingFlushes, double flushesPerGib, int writesInFlight, int depth,
                            int lowPercent, int highPercent) {
    }

    /**
     * The backing device's connection.
     *
     * @param state      "local" (a file or block device), "connected" or "disconnected" (an NBD backing whose server
     *                   went away: pcache reconnects in the background; reads of uncached data fail meanwhile, writes
     *                   are absorbed while the cache has room, writeback waits)
     * @param lastError  why the connection was lost last, or null
     * @param reconnects connections made again since start
     */
    public record Backing(String state, String lastError, long reconnects) {

        /** Whether the backing cannot be reached now. */
        public boolean disconnected() {
            return "disconnected".equals(state);
        }
    }

    /**
     * Garbage collection.
     *
     * @param state          "running", "stopped", or "failed: " and why (WorkerState.toString)
     * @param ksetsReclaimed ksets reclaimed since open
     * @param dataCrcErrors  reclaimed keys whose data no longer matched its CRC
     */
    public record Gc(String state, long ksetsReclaimed, long dataCrcErrors) {
    }

    /**
     * Latency of one NBD command.
     *
     * @param count requests since start
     * @param p50Us median over the last 30 to 60 s, in microseconds
     * @param p99Us 99th percentile over the same window
     * @param maxUs largest over the same window
     */
    public record Latency(long count, double p50Us, double p99Us, double maxUs) {
    }

    /**
     * The document for {@code status} and the segment {@code uses} taken with it, the latency timers in
     * {@code registry}, uptime and the latest drain.
     */
    public static StatusDocument of(CacheStatus status, SegmentUse[] uses, MeterRegistry registry,
                                    double uptimeSeconds, Drain.Status drain) {
        CacheStatus.Counters counters = status.counters();
        CacheInfo flags = CacheInfo.fromFlags(0, 0, status.cacheFlags());
        return new StatusDocument(Integer.toHexString(status.sbFlags()), status.segTotal(), status.cacheSegs(),
                status.segsUsed(), status.gcPercent(), Integer.toHexString(status.cacheFlags()),
                status.keyHead().toString(), status.dirtyTail().toString(), status.keyTail().toString(),
                status.health().phase().name().toLowerCase(Locale.ROOT), status.health().cause(), flags.dataCrc(), cacheMode(flags.cacheMode()), uptimeSeconds, counters.reads(), counters.writes(),
                counters.flushes(), counters.readHitsFull(), counters.readHitsPartial(), counters.readMisses(),
                counters.missFills(), counters.bytesRead(), counters.bytesWritten(), counters.bytesFromCache(),
                counters.bytesFromBacking(), status.writeback().bytesWritten(), status.writeback().dirtyBytes(),
                counters.deferred(), counters.waiting(), counters.dataCrcErrors(),
                new Writeback(status.writeback().state().toString(), status.writeback().ksets(),
                        status.writeback().errors(), status.writeback().lastError(),
                        status.writeback().bytesPerSecond(), status.writeback().batches(),
                        status.writeback().backingFlushes(), status.writeback().flushesPerGib(),
                        status.writeback().writesInFlight(), status.writeback().depth(),
                        status.writeback().lowPercent(), status.writeback().highPercent()),
                new Gc(status.gc().state().toString(), status.gc().ksetsReclaimed(), status.gc().dataCrcErrors()),
                latencies(registry), drain, new Backing(status.backing().state().name().toLowerCase(Locale.ROOT),
                        status.backing().lastError(), status.backing().reconnects()), segmentLetters(uses),
                bypass(status.bypass()));
    }

    /** dm-pcache's status line: the nine fields in order, separated by one space. */
    public String statusLine() {
        return String.join(" ", sbFlags, Integer.toString(segTotal), Integer.toString(cacheSegs),
                Integer.toString(segsUsed), Integer.toString(gcPercent), cacheFlags, keyHead, dirtyTail, keyTail);
    }

    /** Whether the cache failed ({@link #failure()} says why). */
    public boolean failed() {
        return failure != null;
    }

    /** Whether everything the log held when this was taken has been written back. */
    public boolean clean() {
        return dirtyTail.equals(keyHead);
    }

    private static String segmentLetters(SegmentUse[] uses) {
        StringBuilder letters = new StringBuilder(uses.length);
        for (SegmentUse use : uses) {
            letters.append(switch (use) {
                case LOG -> 'l';
                case DIRTY -> 'd';
                case DATA -> 'c';
                case FREE -> '.';
            });
        }
        return letters.toString();
    }

    private static String cacheMode(int code) {
        try {
            return CacheMode.fromOnMedia(code).label();
        } catch (IllegalArgumentException e) {
            return "unknown (" + code + ")";
        }
    }

    private static Bypass bypass(CacheStatus.Bypass bypass) {
        return new Bypass(bypass.modeRequests(), bypass.modeBytes(), bypass.sequentialRequests(),
                bypass.sequentialBytes(), bypass.cachedInstead());
    }

    /** The latency meters {@link NbdMetrics} publishes, per {@code op}; values in seconds become microseconds. */
    private static Map<String, Latency> latencies(MeterRegistry registry) {
        Map<String, Latency> latencies = new TreeMap<>();
        for (FunctionCounter requests : registry.find(NbdMetrics.REQUEST_COUNTER).functionCounters()) {
            String op = requests.getId().getTag("op");
            latencies.put(op, new Latency((long) requests.count(),
                    micros(registry.find(NbdMetrics.LATENCY_GAUGE).tag("op", op).tag("quantile", "0.5")),
                    micros(registry.find(NbdMetrics.LATENCY_GAUGE).tag("op", op).tag("quantile", "0.99")),
                    micros(registry.find(NbdMetrics.LATENCY_MAX_GAUGE).tag("op", op))));
        }
        return latencies;
    }

    private static double micros(Search search) {
        Gauge gauge = search.gauge();
        return gauge == null ? 0 : gauge.value() * 1e6;
    }
}
