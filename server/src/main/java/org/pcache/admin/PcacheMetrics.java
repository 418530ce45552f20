package org.pcache.admin;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.function.ToDoubleFunction;
import org.pcache.backing.BackingConnection;
import org.pcache.cache.CacheMode;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Pcache;
import org.pcache.cache.WorkerState;

/**
 * The cache's counters and gauges as Micrometer meters, read from {@link Pcache#status()} when the registry is
 * scraped. With the NBD latency meters ({@link NbdMetrics}) they make {@code GET /metrics}; docs/cli.md lists every
 * name as Prometheus prints it ({@code pcache.read.hits} becomes {@code pcache_read_hits_total}).
 *
 * <p>Threading: the meters call {@link Pcache#status()}, which any thread may call.
 */
public final class PcacheMetrics implements MeterBinder {

    private static final String BYTES = "bytes";

    private final Pcache cache;
    private final long openedNanos;

    /** Meters of {@code cache}, opened at {@code openedNanos} ({@link System#nanoTime()}). */
    public PcacheMetrics(Pcache cache, long openedNanos) {
        this.cache = cache;
        this.openedNanos = openedNanos;
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        counter(registry, "pcache.reads", null, "Read requests", s -> s.counters().reads());
        counter(registry, "pcache.writes", null, "Write requests, write-zeroes included", s -> s.counters().writes());
        counter(registry, "pcache.flushes", null, "Flush requests", s -> s.counters().flushes());
        FunctionCounter.builder("pcache.read.hits", cache, c -> c.status().counters().readHitsFull())
                .tag("kind", "full").description("Reads served from the cache, wholly or partly").register(registry);
        FunctionCounter.builder("pcache.read.hits", cache, c -> c.status().counters().readHitsPartial())
                .tag("kind", "partial").description("Reads served from the cache, wholly or partly")
                .register(registry);
        counter(registry, "pcache.read.misses", null, "Reads served wholly from the backing device",
                s -> s.counters().readMisses());
        counter(registry, "pcache.miss.fills", null, "Extents kept in the cache after a read miss",
                s -> s.counters().missFills());
        counter(registry, "pcache.read", BYTES, "Bytes clients read", s -> s.counters().bytesRead());
        counter(registry, "pcache.written", BYTES, "Bytes clients wrote", s -> s.counters().bytesWritten());
        counter(registry, "pcache.read.from.cache", BYTES, "Bytes of reads copied from the cache",
                s -> s.counters().bytesFromCache());
        counter(registry, "pcache.read.from.backing", BYTES, "Bytes of reads that came from the backing device",
                s -> s.counters().bytesFromBacking());
        counter(registry, "pcache.writeback", BYTES, "Bytes writeback wrote to the backing device",
                s -> s.writeback().bytesWritten());
        counter(registry, "pcache.writeback.ksets", null, "Ksets written back", s -> s.writeback().ksets());
        counter(registry, "pcache.writeback.errors", null, "Backing errors writeback met (each retried)",
                s -> s.writeback().errors());
        counter(registry, "pcache.writeback.batches", null, "Batches written back (each ends at a barrier, a cap or "
                + "the end of the log)", s -> s.writeback().batches());
        counter(registry, "pcache.writeback.backing.flushes", null, "Backing device flushes writeback made",
                s -> s.writeback().backingFlushes());
        gauge(registry, "pcache.writeback.inflight", null, "Backing writes of writeback in flight now",
                s -> s.writeback().writesInFlight());
        gauge(registry, "pcache.writeback.depth", null, "Backing writes writeback keeps in flight at most",
                s -> s.writeback().depth());
        gauge(registry, "pcache.writeback.low.percent", null, "Dirty percent below which writeback idles",
                s -> s.writeback().lowPercent());
        gauge(registry, "pcache.writeback.high.percent", null, "Dirty percent from which writeback runs at full depth",
                s -> s.writeback().highPercent());
        counter(registry, "pcache.gc.ksets.reclaimed", null, "Ksets reclaimed by garbage collection",
                s -> s.gc().ksetsReclaimed());
        counter(registry, "pcache.deferred.requests", null, "Times a request waited for free space",
                s -> s.counters().deferred());
        counter(registry, "pcache.data.crc.errors", null, "Cache hits whose data did not match its CRC",
                s -> s.counters().dataCrcErrors());
        gauge(registry, "pcache.dirty", BYTES, "Bytes of dirty key records not yet written back",
                s -> s.writeback().dirtyBytes());
        gauge(registry, "pcache.writeback.rate", "bytes.per.second", "Recent writeback throughput",
                s -> s.writeback().bytesPerSecond());
        gauge(registry, "pcache.writeback.failed", null, "1 when writeback stopped for good",
                s -> failed(s.writeback().state()));
        gauge(registry, "pcache.gc.failed", null, "1 when garbage collection stopped for good",
                s -> failed(s.gc().state()));
        gauge(registry, "pcache.failed", null, "1 when the cache failed: nothing more is made durable (status says why)",
                s -> s.health().failed() ? 1 : 0);
        gauge(registry, "pcache.backing.disconnected", null,
                "1 while the backing device's server cannot be reached (status says why)",
                s -> s.backing().state() == BackingConnection.State.DISCONNECTED ? 1 : 0);
        counter(registry, "pcache.backing.reconnects", null, "Connections to the backing server made again",
                s -> s.backing().reconnects());
        gauge(registry, "pcache.waiting.requests", null, "Requests waiting for free space now",
                s -> s.counters().waiting());
        gauge(registry, "pcache.cache.segments", null, "Segments the cache uses (cache_segs)", CacheStatus::cacheSegs);
        gauge(registry, "pcache.segments.used", null, "Segments holding data or log now (segs_used)",
                CacheStatus::segsUsed);
        gauge(registry, "pcache.gc.percent", null, "Segment usage at which GC reclaims (gc_percent)",
                CacheStatus::gcPercent);
        for (CacheMode mode : CacheMode.values()) {
            Gauge.builder("pcache.mode", cache, c -> c.mode() == mode ? 1 : 0).tag("mode", mode.label())
                    .description("1 for the cache mode requests are routed for now").register(registry);
        }
        counter(registry, "pcache.bypass.requests", "mode", null, "Requests that went past the cache, by reason",
                s -> s.bypass().modeRequests());
        counter(registry, "pcache.bypass.requests", "sequential", null, "Requests that went past the cache, by reason",
                s -> s.bypass().sequentialRequests());
        counter(registry, "pcache.bypass", "mode", BYTES, "Bytes of requests that went past the cache, by reason",
                s -> s.bypass().modeBytes());
        counter(registry, "pcache.bypass", "sequential", BYTES, "Bytes of requests that went past the cache, by reason",
                s -> s.bypass().sequentialBytes());
        counter(registry, "pcache.bypass.cached.instead", null,
                "Writes meant for the backing device written into the cache, as it held data of their range",
                s -> s.bypass().cachedInstead());
        long opened = openedNanos;
        // Micrometer holds a gauge's object weakly: the cache, which outlives the registry's use, not this binder.
        Gauge.builder("pcache.uptime", cache, c -> (System.nanoTime() - opened) / 1e9)
                .baseUnit("seconds").description("Time since the cache was opened").register(registry);
    }

    private void counter(MeterRegistry registry, String name, String unit, String description,
                         ToDoubleFunction<CacheStatus> value) {
        FunctionCounter.builder(name, cache, c -> value.applyAsDouble(c.status())).baseUnit(unit)
                .description(description).register(registry);
    }

    private void counter(MeterRegistry registry, String name, String reason, String unit, String description,
                         ToDoubleFunction<CacheStatus> value) {
        FunctionCounter.builder(name, cache, c -> value.applyAsDouble(c.status())).tag("reason", reason)
                .baseUnit(unit).description(description).register(registry);
    }

    private void gauge(MeterRegistry registry, String name, String unit, String description,
                       ToDoubleFunction<CacheStatus> value) {
        Gauge.builder(name, cache, c -> value.applyAsDouble(c.status())).baseUnit(unit).description(description)
                .register(registry);
    }

    private static double failed(WorkerState state) {
        return state.failed() ? 1 : 0;
    }
}
