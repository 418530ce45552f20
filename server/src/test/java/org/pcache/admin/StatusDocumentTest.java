package org.pcache.admin;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.pcache.cache.CacheHealth;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.GcStatus;
import org.pcache.cache.SegmentUse;
import org.pcache.cache.WorkerState;
import org.pcache.cache.WritebackStatus;
import org.pcache.backing.BackingConnection;
import org.pcache.pmem.CachePos;

/** The status document: the nine fields hold the status line's tokens, and the JSON names are the contract's. */
class StatusDocumentTest {

    private static final CacheStatus STATUS = new CacheStatus(1, 63, 62, 17, 55, 0x0dc3, new CachePos(12, 4096),
            new CachePos(3, 5144), new CachePos(2, 0),
            new CacheStatus.Counters(10, 20, 3, 4, 5, 1, 1000, 2000, 700, 300, 6, 7, 2, 1),
            new WritebackStatus(WorkerState.RUNNING, 4096, 1 << 20, 9, 2, "EIO at 4096", 123.5, 4, 3, 5, 32, 0, 20),
            new GcStatus(WorkerState.failed("bad kset"), 8, 1), CacheHealth.failed("msync failed: EIO"),
            new BackingConnection(BackingConnection.State.DISCONNECTED, "server closed the connection", 2),
            new CacheStatus.Bypass(1, 2, 3, 4, 5));

    private static final SegmentUse[] USES = {SegmentUse.LOG, SegmentUse.DIRTY, SegmentUse.FREE, SegmentUse.DATA};

    @Test
    void theStatusLineIsDmPcachesLineTokenForToken() {
        StatusDocument document = StatusDocument.of(STATUS, USES, new SimpleMeterRegistry(), 1.5,
                new Drain.Status(0, Drain.State.IDLE, null));
        assertThat(document.statusLine()).isEqualTo(STATUS.statusLine())
                .isEqualTo("1 63 62 17 55 dc3 12:4096 3:5144 2:0");
        assertThat(document.dataCrc()).as("cache_flags bit 0").isTrue();
        assertThat(document.cacheMode()).isEqualTo("writeback");
        assertThat(document.clean()).isFalse();
    }

    @Test
    void jsonHasEveryFieldBySnakeCaseNameAndReadsBack() throws Exception {
        StatusDocument document = StatusDocument.of(STATUS, USES, new SimpleMeterRegistry(), 1.5,
                new Drain.Status(2, Drain.State.FAILED, "writeback stopped"));
        String json = AdminJson.MAPPER.writeValueAsString(document);
        JsonNode tree = AdminJson.MAPPER.readTree(json);
        List<String> names = new ArrayList<>();
        tree.fieldNames().forEachRemaining(names::add);
        assertThat(names).startsWith("sb_flags", "seg_total", "cache_segs", "segs_used", "gc_percent", "cache_flags",
                "key_head", "dirty_tail", "key_tail", "health", "failure").contains("data_crc", "cache_mode", "uptime_seconds", "reads",
                "writes", "flushes", "read_hits_full", "read_hits_partial", "read_misses", "miss_fills",
                "bytes_read", "bytes_written", "bytes_from_cache", "bytes_from_backing", "bytes_to_backing",
                "dirty_bytes", "deferred_requests", "waiting_requests", "data_crc_errors", "writeback", "gc",
                "latency", "drain", "backing", "segments");
        assertThat(tree.get("backing").get("state").asText()).isEqualTo("disconnected");
        assertThat(tree.get("backing").get("last_error").asText()).isEqualTo("server closed the connection");
        assertThat(tree.get("backing").get("reconnects").asLong()).isEqualTo(2);
        assertThat(tree.get("segments").asText()).isEqualTo("ld.c");
        assertThat(tree.get("cache_flags").asText()).isEqualTo("dc3");
        assertThat(tree.get("health").asText()).isEqualTo("failed");
        assertThat(tree.get("failure").asText()).isEqualTo("msync failed: EIO");
        assertThat(document.failed()).isTrue();
        assertThat(tree.get("key_head").asText()).isEqualTo("12:4096");
        assertThat(tree.get("bytes_to_backing").asLong()).isEqualTo(1 << 20);
        assertThat(tree.get("dirty_bytes").asLong()).isEqualTo(4096);
        assertThat(tree.get("writeback").get("rate_bytes_per_second").asDouble()).isEqualTo(123.5);
        assertThat(tree.get("writeback").get("last_error").asText()).isEqualTo("EIO at 4096");
        assertThat(tree.get("writeback").get("state").asText()).isEqualTo("running");
        assertThat(tree.get("gc").get("state").asText()).isEqualTo("failed: bad kset");
        assertThat(tree.get("gc").get("ksets_reclaimed").asLong()).isEqualTo(8);
        assertThat(tree.get("drain").get("state").asText()).isEqualTo("failed");
        assertThat(tree.get("drain").get("error").asText()).isEqualTo("writeback stopped");
        assertThat(AdminJson.MAPPER.readValue(json, StatusDocument.class)).isEqualTo(document);
    }
}
