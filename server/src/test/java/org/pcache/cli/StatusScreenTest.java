package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.pcache.admin.Drain;
import org.pcache.admin.StatusDocument;
import org.pcache.backing.BackingConnection;
import org.pcache.cache.CacheHealth;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.GcStatus;
import org.pcache.cache.SegmentUse;
import org.pcache.cache.WorkerState;
import org.pcache.cache.WritebackStatus;
import org.pcache.pmem.CachePos;

/** What {@code pcache status --watch} draws for a status document. */
class StatusScreenTest {

    private static final CacheStatus.Counters COUNTERS = new CacheStatus.Counters(10, 20, 3, 4, 5, 1, 4 << 20,
            8 << 20, 3 << 20, 1 << 20, 6, 7, 2, 0);

    @Test
    void aDirtyCacheShowsItsMapTailsUsageHitRatioAndTheTimeToClean() {
        SegmentUse[] uses = new SegmentUse[70];
        Arrays.fill(uses, SegmentUse.FREE);
        uses[0] = SegmentUse.LOG;
        uses[1] = SegmentUse.DATA;
        uses[69] = SegmentUse.DIRTY;
        CacheStatus status = new CacheStatus(0, 70, 70, 3, 50, 0x0c82, new CachePos(0, 8192), new CachePos(0, 4096),
                new CachePos(0, 0), COUNTERS,
                new WritebackStatus(WorkerState.RUNNING, 20 << 20, 1 << 20, 3, 1, "EIO writing 4096", 2 << 20, 2, 2, 7, 32, 0, 20),
                new GcStatus(WorkerState.RUNNING, 2, 0), CacheHealth.HEALTHY, BackingConnection.LOCAL,
                new CacheStatus.Bypass(0, 0, 0, 0, 0));
        StatusDocument document = StatusDocument.of(status, uses, new SimpleMeterRegistry(), 12.4,
                new Drain.Status(0, Drain.State.IDLE, null));

        String frame = StatusScreen.frame(document);

        assertThat(frame).startsWith(StatusScreen.CLEAR).endsWith("\n");
        assertThat(StatusScreen.lines(document)).contains(
                "segments   3 of 70 used (1 log, 1 dirty data, 1 clean data), GC reclaims from 35 used (50 %)",
                "  lc" + ".".repeat(62),
                "  .....d",
                "log        key_tail 0:0 -> dirty_tail 0:4096 -> key_head 0:8192  dirty",
                "used       48.0 MiB of 1.1 GiB, dirty 20.0 MiB",
                "requests   reads 10, writes 20, flushes 3, hit ratio 75.0 %, waiting for space 2 (deferred 7)",
                "writeback  running, 2.0 MiB/s, to clean 0:00:10, 1.0 MiB written back",
                "backing    local, errors 1, last EIO writing 4096",
                "drain      none asked");
        assertThat(StatusScreen.lines(document).get(0)).startsWith("pcache healthy, writeback, up 12 s")
                .endsWith(status.statusLine());
        assertThat(frame).doesNotContain("FAILED");
    }

    @Test
    void aFailedCacheSaysSoWithItsCauseOnTheSecondLine() {
        CacheStatus status = new CacheStatus(0, 2, 2, 1, 70, 0x0c82, new CachePos(0, 0), new CachePos(0, 0),
                new CachePos(0, 0), COUNTERS, new WritebackStatus(WorkerState.STOPPED, 0, 0, 0, 0, null, 0, 0, 0, 0, 32, 0, 20),
                new GcStatus(WorkerState.STOPPED, 0, 0), CacheHealth.failed("msync failed: EIO"), BackingConnection.LOCAL,
                new CacheStatus.Bypass(0, 0, 0, 0, 0));
        StatusDocument document = StatusDocument.of(status, new SegmentUse[] {SegmentUse.LOG, SegmentUse.FREE},
                new SimpleMeterRegistry(), 1, new Drain.Status(3, Drain.State.FAILED, "the cache failed"));

        assertThat(StatusScreen.lines(document).get(1))
                .isEqualTo("FAILED: msync failed: EIO (nothing more is made durable; restart to replay the log)");
        assertThat(StatusScreen.lines(document)).contains("log        key_tail 0:0 -> dirty_tail 0:0 -> key_head 0:0"
                + "  empty", "drain      #3 failed: the cache failed", "writeback  stopped, 0 B/s, to clean nothing, "
                + "0 B written back");
    }
}
