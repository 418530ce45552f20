package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.PrometheusText;

/**
 * {@code pcache status}, {@code message} and the metrics of the admin endpoint, end to end: the real jar serving
 * on ephemeral ports, written to with the project's NBD client, asked by the real jar.
 */
class AdminCommandsIT {

    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("64M"));
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        files.close();
    }

    @Test
    void statusAfterWritesShowsTheNineFieldsAndTheStatisticsOfWhatWasWritten() throws Exception {
        SectorData.writeAndFlush(server.uri(), 0, 4 * MIB, 1);

        ServeProcess.Exit plain = ServeProcess.run(dir, "status", "--admin", server.admin());
        assertThat(plain.status()).as("stderr: %s", plain.stderr()).isZero();
        assertThat(plain.stdout().lines().toList()).hasSize(1);
        String[] fields = plain.stdout().strip().split(" ");
        assertThat(fields).hasSize(9);
        assertThat(fields[0]).as("sb_flags").isEqualTo("0");
        assertThat(fields[1]).as("seg_total").isEqualTo("31");
        assertThat(fields[2]).as("cache_segs").isEqualTo("31");
        assertThat(Integer.parseInt(fields[3])).as("segs_used: a log segment and the data").isGreaterThanOrEqualTo(2);
        assertThat(fields[4]).as("gc_percent").isEqualTo("70");
        assertThat(Integer.parseInt(fields[5], 16) & 0b10).as("cache_flags INIT_DONE").isNotZero();
        assertThat(fields[6]).as("key_head after a flush").matches("\\d+:\\d+").isNotEqualTo("0:0");
        assertThat(fields[7]).as("dirty_tail").matches("\\d+:\\d+");
        assertThat(fields[8]).as("key_tail").isEqualTo("0:0");

        ServeProcess.Exit json = ServeProcess.run(dir, "status", "--admin", server.admin(), "--json");
        assertThat(json.status()).isZero();
        JsonNode status = new ObjectMapper().readTree(json.stdout());
        assertThat(status.get("seg_total").asInt()).isEqualTo(31);
        assertThat(status.get("key_head").asText()).as("no writes since the plain status").isEqualTo(fields[6]);
        assertThat(status.get("cache_flags").asText()).isEqualTo(fields[5]);
        assertThat(status.get("writes").asLong()).isEqualTo(4);
        assertThat(status.get("bytes_written").asLong()).isEqualTo(4 * MIB);
        assertThat(status.get("flushes").asLong()).isEqualTo(1);
        assertThat(status.get("reads").asLong()).isZero();
        assertThat(status.get("latency").get("write").get("count").asLong()).isEqualTo(4);
        assertThat(status.get("latency").get("write").get("p99_us").asDouble()).isPositive();
        assertThat(status.get("uptime_seconds").asDouble()).isPositive();
        for (String field : List.of("read_hits_full", "read_hits_partial", "read_misses", "bytes_from_cache",
                "bytes_from_backing", "bytes_to_backing", "dirty_bytes", "deferred_requests", "writeback", "gc",
                "drain")) {
            assertThat(status.has(field)).as("field %s", field).isTrue();
        }
        assertThat(status.get("writeback").get("errors").asLong()).isZero();
    }

    @Test
    void gcPercentIsCheckedOnTheWholeNumberAndPersistedAcrossARestart() throws Exception {
        for (List<String> words : List.of(List.of("gc_percent", "91"), List.of("gc_percent", "300"),
                List.of("gc_percent", "-1"), List.of("gc_percent", ""), List.of("gc_percent", "abc"),
                List.of("gc_percent"), List.of("gc_percent", "5", "6"), List.of("flush_all", "1"))) {
            ServeProcess.Exit refused = message(words);
            assertThat(refused.status()).as("message %s", words).isNotZero();
            assertThat(refused.messages()).as("message %s: %s", words, refused.stderr()).singleElement().asString()
                    .startsWith("pcache message: ").containsAnyOf("gc_percent", "unknown message");
            assertThat(refused.stdout()).isEmpty();
        }
        assertThat(gcPercent()).as("nothing refused changed anything").isEqualTo("70");

        assertThat(message(List.of("GC_PERCENT", "50")).status()).as("the keyword in any case").isZero();
        assertThat(gcPercent()).isEqualTo("50");
        assertThat(server.terminate()).isZero();
        server = ServeProcess.start(dir, files.serve("64M"));
        assertThat(gcPercent()).as("persisted in cache_info").isEqualTo("50");
    }

    @Test
    void metricsAreValidPrometheusTextWithTheExpectedNames() throws Exception {
        SectorData.writeAndFlush(server.uri(), 0, MIB, 1);
        SectorData.read(server.uri(), 0, MIB);
        HttpResponse<String> response;
        try (HttpClient http = HttpClient.newHttpClient()) {
            response = http.send(HttpRequest.newBuilder(URI.create("http://" + server.admin() + "/metrics"))
                    .timeout(Duration.ofSeconds(30)).build(), HttpResponse.BodyHandlers.ofString());
        }
        assertThat(response.statusCode()).isEqualTo(200);
        PrometheusText metrics = PrometheusText.parse(response.body());
        assertThat(metrics.names()).contains("pcache_reads_total", "pcache_writes_total", "pcache_read_hits_total",
                "pcache_written_bytes_total", "pcache_writeback_bytes_total", "pcache_dirty_bytes",
                "pcache_segments_used", "pcache_uptime_seconds", "pcache_nbd_requests_total",
                "pcache_nbd_request_latency_seconds", "pcache_nbd_request_latency_max_seconds");
        assertThat(metrics.value("pcache_nbd_requests_total", "{op=\"read\"}")).isEqualTo(1);
        assertThat(metrics.value("pcache_read_hits_total", "{kind=\"full\"}")).isEqualTo(1);
    }

    @Test
    void statusWatchRedrawsTheScreenEverySecondUntilInterrupted() throws Exception {
        SectorData.writeAndFlush(server.uri(), 0, 4 * MIB, 1);
        Path out = dir.resolve("watch.out");
        Process watch = ServeProcess.spawn(dir, out, dir.resolve("watch.err"), "status", "--admin", server.admin(),
                "--watch");
        try {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (Files.readString(out).split(Pattern.quote(StatusScreen.CLEAR), -1).length < 3) {
                assertThat(watch.isAlive()).as("still watching; stderr: %s",
                        Files.readString(dir.resolve("watch.err"))).isTrue();
                assertThat(System.nanoTime()).as("two frames within 30 s").isLessThan(deadline);
                Thread.onSpinWait();
            }
        } finally {
            watch.destroy();
            watch.waitFor();
        }
        String[] frames = Files.readString(out).split(Pattern.quote(StatusScreen.CLEAR), -1);
        assertThat(frames[0]).as("nothing before the first frame").isEmpty();
        assertThat(frames[1]).startsWith("pcache healthy, writeback").contains("segments   ", "key_head ",
                "writes 4, flushes 1", "latency (us)");

        ServeProcess.Exit both = ServeProcess.run(dir, "status", "--admin", server.admin(), "--watch", "--json");
        assertThat(both.status()).isEqualTo(2);
        assertThat(both.stderr()).contains("--json and --watch cannot be combined");
    }

    private ServeProcess.Exit message(List<String> words) throws Exception {
        List<String> args = new ArrayList<>(List.of("message", "--admin", server.admin()));
        args.addAll(words);
        return ServeProcess.run(dir, args.toArray(String[]::new));
    }

    private String gcPercent() throws Exception {
        ServeProcess.Exit status = ServeProcess.run(dir, "status", "--admin", server.admin());
        assertThat(status.status()).as("stderr: %s", status.stderr()).isZero();
        return status.stdout().strip().split(" ")[4];
    }
}
