package org.pcache.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.pcache.admin.StatusDocument;

/**
 * What {@code pcache status --watch} shows: the dashboard's numbers as lines of text, redrawn in place once a second
 * by {@link #frame}, which homes the cursor and clears the screen before them (ANSI, as {@code watch(1)} does).
 */
final class StatusScreen {

    /** Cursor home, then erase the whole screen. */
    static final String CLEAR = "\033[H\033[2J";
    /** Segments per line of the segment map. */
    static final int MAP_WIDTH = 64;
    private static final long SEGMENT_SIZE = 16L << 20;

    private StatusScreen() {
    }

    /** The screen for {@code status}: {@link #CLEAR}, then {@link #lines}, each ended by a newline. */
    static String frame(StatusDocument status) {
        return CLEAR + String.join("\n", lines(status)) + "\n";
    }

    /** The lines of the screen, without escapes. */
    static List<String> lines(StatusDocument status) {
        List<String> lines = new ArrayList<>();
        lines.add("pcache " + status.health() + ", " + status.cacheMode() + (status.dataCrc() ? ", data CRC" : "")
                + ", up " + seconds(status.uptimeSeconds()) + "        " + status.statusLine());
        if (status.failed()) {
            lines.add("FAILED: " + status.failure() + " (nothing more is made durable; restart to replay the log)");
        }
        lines.add("");
        String map = status.segments();
        long log = map.chars().filter(c -> c == 'l').count();
        long dirty = map.chars().filter(c -> c == 'd').count();
        long clean = map.chars().filter(c -> c == 'c').count();
        lines.add(String.format(Locale.ROOT,
                "segments   %d of %d used (%d log, %d dirty data, %d clean data), GC reclaims from %d used (%d %%)",
                status.segsUsed(), status.cacheSegs(), log, dirty, clean, status.cacheSegs() * status.gcPercent() / 100,
                status.gcPercent()));
        for (int from = 0; from < map.length(); from += MAP_WIDTH) {
            lines.add("  " + map.substring(from, Math.min(map.length(), from + MAP_WIDTH)));
        }
        lines.add("           l kset log, d dirty data, c clean data, . free");
        lines.add("log        key_tail " + status.keyTail() + " -> dirty_tail " + status.dirtyTail() + " -> key_head "
                + status.keyHead() + "  " + (status.clean() ? (status.keyTail().equals(status.keyHead()) ? "empty"
                : "clean") : "dirty"));
        lines.add("used       " + ByteSize.format(status.segsUsed() * SEGMENT_SIZE) + " of "
                + ByteSize.format(status.cacheSegs() * SEGMENT_SIZE) + ", dirty "
                + ByteSize.format(status.dirtyBytes()));
        lines.add("requests   reads " + status.reads() + ", writes " + status.writes() + ", flushes " + status.flushes()
                + ", hit ratio " + hitRatio(status) + ", waiting for space " + status.waitingRequests() + " (deferred "
                + status.deferredRequests() + ")");
        StatusDocument.Bypass bypass = status.bypass();
        lines.add("bypass     mode " + bypass.modeRequests() + " (" + ByteSize.format(bypass.modeBytes())
                + "), sequential " + bypass.sequentialRequests() + " (" + ByteSize.format(bypass.sequentialBytes())
                + "), cached instead " + bypass.cachedInstead());
        StatusDocument.Writeback writeback = status.writeback();
        lines.add("writeback  " + writeback.state() + ", " + ByteSize.format((long) writeback.rateBytesPerSecond())
                + "/s, to clean " + (status.dirtyBytes() == 0 ? "nothing"
                : Progress.eta(status.dirtyBytes(), writeback.rateBytesPerSecond())) + ", "
                + ByteSize.format(status.bytesToBacking()) + " written back");
        lines.add("           in flight " + writeback.writesInFlight() + " of " + writeback.depth() + ", watermarks "
                + writeback.lowPercent() + "-" + writeback.highPercent() + "% dirty, " + writeback.batches()
                + " batches, " + writeback.backingFlushes() + " backing flushes ("
                + String.format(Locale.ROOT, "%.1f", writeback.flushesPerGib()) + " per GiB)");
        StatusDocument.Backing backing = status.backing();
        lines.add("backing    " + backing.state() + (backing.reconnects() == 0 ? "" : ", reconnects " + backing.reconnects())
                + (backing.disconnected() && backing.lastError() != null ? " (" + backing.lastError() + ")" : "")
                + ", errors " + writeback.errors() + ", last " + (writeback.lastError() == null ? "none"
                : writeback.lastError()));
        lines.add("gc         " + status.gc().state() + ", " + status.gc().ksetsReclaimed() + " ksets reclaimed");
        lines.add("drain      " + (status.drain().id() == 0 ? "none asked" : "#" + status.drain().id() + " "
                + status.drain().state().name().toLowerCase(Locale.ROOT)
                + (status.drain().error() == null ? "" : ": " + status.drain().error())));
        lines.add("");
        lines.add(String.format(Locale.ROOT, "%-14s %10s %10s %10s %10s", "latency (us)", "count", "p50", "p99",
                "max"));
        for (Map.Entry<String, StatusDocument.Latency> entry : status.latency().entrySet()) {
            StatusDocument.Latency latency = entry.getValue();
            lines.add(String.format(Locale.ROOT, "%-14s %10d %10.0f %10.0f %10.0f", entry.getKey(), latency.count(),
                    latency.p50Us(), latency.p99Us(), latency.maxUs()));
        }
        return lines;
    }

    /** Bytes read that came from the cache, in percent, or "-" before any read. */
    static String hitRatio(StatusDocument status) {
        return status.bytesRead() == 0 ? "-"
                : String.format(Locale.ROOT, "%.1f %%", 100.0 * status.bytesFromCache() / status.bytesRead());
    }

    private static String seconds(double seconds) {
        return String.format(Locale.ROOT, "%.0f s", seconds);
    }
}
