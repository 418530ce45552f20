package org.pcache.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.MemoryEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.nbd.Durability;
import org.pcache.nbd.NbdClient;
import org.pcache.nbd.NbdServer;
import org.pcache.nbd.NbdUri;
import org.pcache.nbd.PcacheExport;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.MappedPmemRegion;

/**
 * The admin endpoint on a real cache (a tmpfs-mapped region, an in-memory backing device) with writes made by an NBD
 * client through the NBD server and export, so the latency meters are the real ones: every route, every error
 * answer, and that the endpoint goes on after each.
 */
class AdminServerTest {

    private static final long BACKING_SIZE = 64L << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final Arena arena = Arena.ofShared();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpClient http = HttpClient.newHttpClient();
    private Path regionFile;
    private MappedPmemRegion region;
    private BackingDevice backing;
    private Pcache cache;
    private PcacheExport export;
    private NbdServer nbdServer;
    private NbdClient nbd;
    private AdminServer server;
    private AdminClient client;

    @BeforeEach
    void start() throws Exception {
        regionFile = Files.createTempFile(Path.of("/dev/shm"), "pcache-admin-", ".img");
        Files.delete(regionFile);
        region = MappedPmemRegion.open(regionFile, CacheDeviceLayout.MIN_SIZE);
        backing = BackingDevice.start(new MemoryEngine(BACKING_SIZE));
        cache = Pcache.open(region, backing, CacheOptions.defaults());
        export = new PcacheExport(cache, "", "test");
        nbdServer = new NbdServer(export, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0)));
        nbdServer.start();
        new NbdMetrics(nbdServer.statistics()).bindTo(registry);
        nbd = NbdClient.connect(NbdUri.of(nbdServer.boundAddresses().getFirst(), ""));
        long opened = System.nanoTime();
        new PcacheMetrics(cache, opened).bindTo(registry);
        server = new AdminServer(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), cache, registry, opened);
        server.start();
        client = new AdminClient(server.boundAddress());
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        http.close();
        server.stop();
        nbd.close();
        nbdServer.stop();
        cache.close();
        export.close();
        backing.stop();
        region.close();
        Files.deleteIfExists(regionFile);
        arena.close();
    }

    @Test
    void statusCountsWhatClientsDidAndTimesEachCommand() throws Exception {
        for (int i = 0; i < 3; i++) {
            nbd.write(i * 65536L, pattern(65536, i), Durability.BUFFERED).get(30, TimeUnit.SECONDS);
        }
        nbd.read(0, arena.allocate(65536)).get(30, TimeUnit.SECONDS);
        nbd.flush().get(30, TimeUnit.SECONDS);

        StatusDocument status = client.status();
        assertThat(status.statusLine().split(" ")).hasSize(9);
        assertThat(status.writes()).isEqualTo(3);
        assertThat(status.bytesWritten()).isEqualTo(3 * 65536);
        assertThat(status.reads()).isEqualTo(1);
        assertThat(status.readHitsFull()).isEqualTo(1);
        assertThat(status.bytesFromCache()).isEqualTo(65536);
        assertThat(status.flushes()).isEqualTo(1);
        assertThat(status.keyHead()).as("the flush wrote a kset").isNotEqualTo("0:0");
        assertThat(status.gcPercent()).isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);
        assertThat(status.cacheMode()).isEqualTo("writeback");
        assertThat(status.latency()).containsOnlyKeys("read", "write", "flush", "trim", "write_zeroes", "cache");
        assertThat(status.latency().get("write").count()).isEqualTo(3);
        assertThat(status.latency().get("write").p99Us()).isPositive();
        assertThat(status.latency().get("trim").count()).isZero();
        assertThat(status.uptimeSeconds()).isPositive();
        assertThat(status.drain()).isEqualTo(new Drain.Status(0, Drain.State.IDLE, null));
    }

    @Test
    void aMessageIsAppliedAndPersistedInTheCacheInfo() throws Exception {
        client.message(new CacheMessage(CacheMessage.Kind.GC_PERCENT, 42));
        assertThat(cache.status().gcPercent()).isEqualTo(42);
        assertThat(client.status().gcPercent()).isEqualTo(42);
    }

    @Test
    void writebackWatermarksAreSetOnlineAndShownInStatusAndALowAboveTheHighIsRefused() throws Exception {
        client.message(CacheMessage.parse("writeback_high 60"));
        client.message(CacheMessage.parse("writeback_low 10"));
        assertThat(cache.status().writeback().lowPercent()).isEqualTo(10);
        StatusDocument.Writeback writeback = client.status().writeback();
        assertThat(writeback.lowPercent()).isEqualTo(10);
        assertThat(writeback.highPercent()).isEqualTo(60);
        assertThat(writeback.depth()).isEqualTo(CacheOptions.WRITEBACK_DEPTH_DEFAULT);

        assertThatThrownBy(() -> client.message(CacheMessage.parse("writeback_low 70")))
                .hasMessageContaining("above writeback_high 60");
        assertThat(cache.status().writeback().lowPercent()).isEqualTo(10);
    }

    @Test
    void aRefusedMessageIsA400WithOneLineAndChangesNothing() throws Exception {
        for (String body : List.of("gc_percent 91", "gc_percent 300", "gc_percent -1", "gc_percent", "gc_percent abc",
                "frobnicate 1", "")) {
            HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/message"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)));
            assertThat(response.statusCode()).as("POST /message '%s'", body).isEqualTo(400);
            assertThat(response.body().lines().toList()).as("one line for '%s'", body).hasSize(1);
        }
        assertThat(cache.status().gcPercent()).isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);
        assertThatThrownBy(() -> client.message(new CacheMessage(CacheMessage.Kind.GC_PERCENT, 91)))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void aPostFromAnotherSitesPageIsA403AndChangesNothing() throws Exception {
        HttpResponse<String> foreign = send(HttpRequest.newBuilder(uri("/message")).header("Origin",
                "http://evil.example").POST(HttpRequest.BodyPublishers.ofString("gc_percent 0")));
        assertThat(foreign.statusCode()).isEqualTo(403);
        assertThat(send(HttpRequest.newBuilder(uri("/drain")).header("Origin", "http://evil.example")
                .POST(HttpRequest.BodyPublishers.noBody())).statusCode()).isEqualTo(403);
        assertThat(cache.status().gcPercent()).isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);

        HttpResponse<String> own = send(HttpRequest.newBuilder(uri("/message")).header("Origin",
                "http://127.0.0.1:" + server.boundAddress().getPort())
                .POST(HttpRequest.BodyPublishers.ofString("gc_percent 33")));
        assertThat(own.statusCode()).as("the dashboard's own origin").isEqualTo(204);
        assertThat(cache.status().gcPercent()).isEqualTo(33);
    }

    @Test
    void theDashboardIsOneHtmlPageThatPollsTheStatus() throws Exception {
        HttpResponse<String> page = send(HttpRequest.newBuilder(uri("/")).GET());
        assertThat(page.statusCode()).isEqualTo(200);
        assertThat(page.headers().firstValue("Content-Type")).hasValue("text/html; charset=utf-8");
        assertThat(page.body()).contains("<title>pcache", "fetch('/status'", "id=\"segmap\"")
                .doesNotContain("http://", "https://");
        assertThat(client.status().segments()).hasSize(cache.status().cacheSegs()).contains("l");
    }

    @Test
    void anOversizedMessageIsA413() throws Exception {
        HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/message"))
                .POST(HttpRequest.BodyPublishers.ofString("gc_percent " + "0".repeat(AdminServer.MAX_BODY_LENGTH))));
        assertThat(response.statusCode()).isEqualTo(413);
        assertThat(client.status().gcPercent()).as("still answering").isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);
    }

    @Test
    void unknownPathsAre404AndWrongMethods405WithAllow() throws Exception {
        assertThat(send(HttpRequest.newBuilder(uri("/nope")).GET()).statusCode()).isEqualTo(404);
        assertThat(send(HttpRequest.newBuilder(uri("/status/extra")).GET()).statusCode()).isEqualTo(404);
        HttpResponse<String> put = send(HttpRequest.newBuilder(uri("/status"))
                .PUT(HttpRequest.BodyPublishers.ofString("x")));
        assertThat(put.statusCode()).isEqualTo(405);
        assertThat(put.headers().firstValue("Allow")).hasValue("GET");
        HttpResponse<String> get = send(HttpRequest.newBuilder(uri("/message")).GET());
        assertThat(get.statusCode()).isEqualTo(405);
        assertThat(get.headers().firstValue("Allow")).hasValue("POST");
        assertThat(send(HttpRequest.newBuilder(uri("/drain")).DELETE()).statusCode()).isEqualTo(405);
        assertThat(client.status().segTotal()).as("still answering").isPositive();
    }

    @Test
    void metricsAreValidPrometheusTextWithTheCacheAndLatencyMeters() throws Exception {
        nbd.write(0, pattern(4096, 1), Durability.FUA).get(30, TimeUnit.SECONDS);
        HttpResponse<String> response = send(HttpRequest.newBuilder(uri("/metrics")).GET());
        assertThat(response.statusCode()).isEqualTo(200);
        assertThat(response.headers().firstValue("Content-Type")).hasValueSatisfying(
                type -> assertThat(type).startsWith("text/plain; version=0.0.4"));
        PrometheusText metrics = PrometheusText.parse(response.body());
        assertThat(metrics.names()).contains("pcache_reads_total", "pcache_writes_total", "pcache_read_hits_total",
                "pcache_read_misses_total", "pcache_read_bytes_total", "pcache_written_bytes_total",
                "pcache_read_from_cache_bytes_total", "pcache_read_from_backing_bytes_total",
                "pcache_writeback_bytes_total", "pcache_dirty_bytes", "pcache_deferred_requests_total",
                "pcache_writeback_errors_total", "pcache_writeback_rate_bytes_per_second", "pcache_segments_used",
                "pcache_gc_percent", "pcache_uptime_seconds", "pcache_nbd_requests_total",
                "pcache_nbd_request_latency_seconds", "pcache_nbd_request_latency_max_seconds");
        assertThat(metrics.value("pcache_writes_total", "")).isEqualTo(1.0);
        assertThat(metrics.value("pcache_nbd_requests_total", "{op=\"write\"}")).isEqualTo(1.0);
        assertThat(metrics.value("pcache_nbd_request_latency_seconds", "{op=\"write\",quantile=\"0.99\"}"))
                .isPositive();
        assertThat(metrics.value("pcache_uptime_seconds", "")).isPositive();
    }

    @Test
    void aDrainWritesEverythingBackAndStatusShowsItDone() throws Exception {
        for (int i = 0; i < 16; i++) {
            nbd.write(i * (1L << 20), pattern(1 << 20, i), Durability.BUFFERED).get(30, TimeUnit.SECONDS);
        }
        Drain.Status started = client.startDrain();
        assertThat(started.id()).isEqualTo(1);
        StatusDocument status = awaitDrainEnded(started.id());
        assertThat(status.drain()).isEqualTo(new Drain.Status(1, Drain.State.DONE, null));
        assertThat(status.clean()).isTrue();
        assertThat(status.dirtyBytes()).isZero();
        assertThat(status.bytesToBacking()).isEqualTo(16L << 20);
        assertThat(client.startDrain().id()).as("the next request starts the next drain").isEqualTo(2);
    }

    @Test
    void aDrainTheCacheRefusesEndsFailedWithTheReason() {
        cache.close();
        Drain.Status failed = new Drain(cache).start();
        assertThat(failed.id()).isEqualTo(1);
        assertThat(failed.state()).isEqualTo(Drain.State.FAILED);
        assertThat(failed.error()).contains("closed");
        assertThat(failed.ended()).isTrue();
        assertThat(failed.done()).isFalse();
    }

    @Test
    void refusesAnAddressThatIsNotLoopback() throws Exception {
        InetSocketAddress remote = new InetSocketAddress(InetAddress.getByName("192.0.2.1"), 10810);
        assertThatThrownBy(() -> new AdminServer(remote, cache, registry, 0))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("loopback only");
    }

    @Test
    void withATokenEveryRequestNeedsItAndAnyAddressMayBeBound() throws Exception {
        AdminToken token = AdminToken.of("0123456789abcdef-secret");
        server.stop();
        server = new AdminServer(new InetSocketAddress("0.0.0.0", 0), Optional.of(token), cache, registry, 0);
        server.start();
        for (String path : List.of("/status", "/metrics")) {
            HttpResponse<String> none = send(HttpRequest.newBuilder(uri(path)).GET());
            assertThat(none.statusCode()).as(path).isEqualTo(401);
            assertThat(none.headers().firstValue("WWW-Authenticate")).hasValueSatisfying(v -> assertThat(v)
                    .startsWith("Bearer"));
            assertThat(none.body()).contains("requires a token").doesNotContain("secret");
            HttpResponse<String> wrong = send(HttpRequest.newBuilder(uri(path)).GET()
                    .header("Authorization", "Bearer 0123456789abcdef-secreT"));
            assertThat(wrong.statusCode()).isEqualTo(401);
            assertThat(wrong.body()).contains("wrong admin token").doesNotContain("secret");
            HttpResponse<String> right = send(HttpRequest.newBuilder(uri(path)).GET()
                    .header("Authorization", "bearer 0123456789abcdef-secret"));
            assertThat(right.statusCode()).as(path).isEqualTo(200);
        }
        HttpResponse<String> message = send(HttpRequest.newBuilder(uri("/message"))
                .POST(HttpRequest.BodyPublishers.ofString("gc_percent 50")));
        assertThat(message.statusCode()).as("a POST without the token changes nothing").isEqualTo(401);
        assertThat(cache.status().gcPercent()).isNotEqualTo(50);
        try (AdminClient withToken = new AdminClient(new InetSocketAddress(InetAddress.getLoopbackAddress(),
                server.boundAddress().getPort()), Optional.of(token))) {
            withToken.message(CacheMessage.parse("gc_percent 50"));
            assertThat(withToken.status().gcPercent()).isEqualTo(50);
        }
        try (AdminClient without = new AdminClient(new InetSocketAddress(InetAddress.getLoopbackAddress(),
                server.boundAddress().getPort()))) {
            assertThatThrownBy(without::status).isInstanceOf(AdminException.class)
                    .hasMessageContaining("requires a token");
        }
    }

    @Test
    void withATokenTheDashboardPageLoadsWithoutItButNothingElseDoes() throws Exception {
        server.stop();
        server = new AdminServer(new InetSocketAddress("0.0.0.0", 0), Optional.of(AdminToken.of(
                "0123456789abcdef-secret")), cache, registry, 0);
        server.start();
        HttpResponse<String> page = send(HttpRequest.newBuilder(uri("/")).GET());
        assertThat(page.statusCode()).isEqualTo(200);
        assertThat(page.body()).contains("pcache dashboard", "Authorization", "Bearer")
                .doesNotContain("secret", "\"key_head\"");
        assertThat(send(HttpRequest.newBuilder(uri("/")).POST(HttpRequest.BodyPublishers.ofString("x")))
                .statusCode()).as("only GET of the page").isEqualTo(401);
        assertThat(send(HttpRequest.newBuilder(uri("/status")).GET()).statusCode()).isEqualTo(401);
        assertThat(send(HttpRequest.newBuilder(uri("/?x=status")).GET()).statusCode()).isEqualTo(200);
        assertThat(send(HttpRequest.newBuilder(uri("/status/")).GET()).statusCode()).isEqualTo(401);
    }

    @Test
    void aTokenIsNeverShownAndMustBeLongAndPrintable() {
        assertThat(AdminToken.of("0123456789abcdef-secret\n")).hasToString("AdminToken[redacted]");
        assertThatThrownBy(() -> AdminToken.of("short-secret")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("16 to").hasMessageNotContaining("short-secret");
        assertThatThrownBy(() -> AdminToken.of("0123456789abcdef secret")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageNotContaining("0123456789abcdef");
    }

    @Test
    void aStoppedEndpointIsUnreachableWithOneClearLine() {
        server.stop();
        assertThatThrownBy(() -> client.status()).isInstanceOf(AdminException.class)
                .hasMessageContaining("cannot reach the admin endpoint at 127.0.0.1:")
                .hasMessageContaining("connection refused");
    }

    /** Polls the status until drain {@code id} ended, bounded by {@link #TIMEOUT}. */
    private StatusDocument awaitDrainEnded(long id) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        StatusDocument status = client.status();
        while (!(status.drain().id() == id && status.drain().ended())) {
            assertThat(System.nanoTime()).as("drain %d ended within %s", id, TIMEOUT).isLessThan(deadline);
            Thread.onSpinWait();
            status = client.status();
        }
        return status;
    }

    private HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
        return http.send(request.timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
    }

    private URI uri(String path) {
        InetSocketAddress address = server.boundAddress();
        return URI.create("http://127.0.0.1:" + address.getPort() + path);
    }

    private MemorySegment pattern(int length, int seed) {
        MemorySegment segment = arena.allocate(length);
        for (int i = 0; i < length; i += 8) {
            segment.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, i, i * 31L + seed);
        }
        return segment;
    }
}
