package org.pcache.admin;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.MeterBinder;
import java.util.Locale;
import java.util.function.ToDoubleFunction;
import org.pcache.nbd.NbdCommand;
import org.pcache.nbd.RequestLatency;
import org.pcache.nbd.RequestStatistics;

/**
 * An NBD server's command latencies ({@link RequestStatistics}) as Micrometer meters, read when the registry is
 * scraped, one set per timed command, tagged {@code op} (read, write, flush, trim, write_zeroes, cache): the count as
 * {@value #REQUEST_COUNTER}, p50 and p99 over the last 30 to 60 s as {@value #LATENCY_GAUGE} (tag {@code quantile},
 * seconds), the largest as {@value #LATENCY_MAX_GAUGE}. With the cache's meters ({@link PcacheMetrics}) they make
 * {@code GET /metrics}, and {@link StatusDocument} reads them back for {@code pcache status}.
 *
 * <p>Threading: the meters read {@link RequestLatency#snapshot()}, which any thread may call.
 */
public final class NbdMetrics implements MeterBinder {

    /** Counter of NBD commands, tagged {@code op}. */
    public static final String REQUEST_COUNTER = "pcache.nbd.requests";
    /** Gauge of command latency in seconds, tagged {@code op} and {@code quantile} (0.5, 0.99). */
    public static final String LATENCY_GAUGE = "pcache.nbd.request.latency";
    /** Gauge of the largest command latency in seconds, tagged {@code op}. */
    public static final String LATENCY_MAX_GAUGE = "pcache.nbd.request.latency.max";
    private static final String SECONDS = "seconds";

    private final RequestStatistics statistics;

    public NbdMetrics(RequestStatistics statistics) {
        this.statistics = statistics;
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        for (NbdCommand command : RequestStatistics.TIMED) {
            String op = command.name().toLowerCase(Locale.ROOT);
            RequestLatency latency = statistics.latency(command);
            FunctionCounter.builder(REQUEST_COUNTER, latency, l -> l.snapshot().count()).tag("op", op)
                    .description("NBD commands the cache completed").register(registry);
            gauge(LATENCY_GAUGE, op, latency, l -> l.snapshot().p50Nanos()).tag("quantile", "0.5").register(registry);
            gauge(LATENCY_GAUGE, op, latency, l -> l.snapshot().p99Nanos()).tag("quantile", "0.99")
                    .register(registry);
            gauge(LATENCY_MAX_GAUGE, op, latency, l -> l.snapshot().maxNanos()).register(registry);
        }
    }

    private static Gauge.Builder<RequestLatency> gauge(String name, String op, RequestLatency latency,
                                                       ToDoubleFunction<RequestLatency> nanos) {
        return Gauge.builder(name, latency, l -> nanos.applyAsDouble(l) / 1e9).tag("op", op).baseUnit(SECONDS)
                .description("Time from an NBD command's arrival at the cache to its completion, over the last "
                        + "30 to 60 s");
    }
}
