package org.pcache.cache;

import java.util.Arrays;

/**
 * What a concurrent run acknowledged, per sector, in the run's event order ({@link PowerTrace}): which values each
 * sector may hold after a power cut at a given event, and which a read may return.
 *
 * <p>The guarantee it encodes (docs/cache.md, "Durability"): a write is durable once it was acknowledged before a
 * flush was submitted and that flush was acknowledged, or once it was acknowledged as FUA. After a cut a sector holds
 * its last durable write or a write submitted after it, never an older one and never garbage; a sector with no durable
 * write may also still hold its original content (zeroes). Writers own disjoint ranges, so the writes of one sector
 * are totally ordered (each acknowledged before the next is submitted) and their ids grow. A write-zeroes leaves
 * {@link SectorPattern#ZERO}, like the original content.
 *
 * <p>Threading: every method with the trace's lock held.
 */
final class DurabilityModel {

    private static final long NOT_YET = Long.MAX_VALUE;
    private static final int SECTOR = SectorPattern.SECTOR;

    private long[] ackEvent = new long[1024];
    private boolean[] fua = new boolean[1024];
    /** Per write: a write-zeroes, whose sectors read back as {@link SectorPattern#ZERO}, not as its id. */
    private boolean[] zeroes = new boolean[1024];
    private int writes;
    /** Per sector, the writes that covered it (ids are index + 1), in order. */
    private final int[][] history;
    private final int[] historyLength;
    /** Per sector, the index in its history of the last durable write; -1 for none. */
    private final int[] lastDurable;
    /** The latest submission event of an acknowledged flush: every write acknowledged before it is durable. */
    private long flushHorizon;

    DurabilityModel(long deviceSize) {
        int sectors = Math.toIntExact(deviceSize / SECTOR);
        this.history = new int[sectors][];
        this.historyLength = new int[sectors];
        this.lastDurable = new int[sectors];
        Arrays.fill(lastDurable, -1);
    }

    /**
     * A write of {@code [off, off + len)} (of zeroes when {@code isZeroes}) was submitted; returns its id (the pattern
     * to write).
     */
    long submitWrite(long off, int len, boolean isFua, boolean isZeroes) {
        if (writes == ackEvent.length) {
            ackEvent = Arrays.copyOf(ackEvent, writes * 2);
            fua = Arrays.copyOf(fua, writes * 2);
            zeroes = Arrays.copyOf(zeroes, writes * 2);
        }
        int w = writes++;
        ackEvent[w] = NOT_YET;
        fua[w] = isFua;
        zeroes[w] = isZeroes;
        for (int s = (int) (off / SECTOR); s < (off + len) / SECTOR; s++) {
            int[] h = history[s];
            if (h == null) {
                h = new int[8];
                history[s] = h;
            } else if (historyLength[s] == h.length) {
                h = Arrays.copyOf(h, h.length * 2);
                history[s] = h;
            }
            h[historyLength[s]++] = w;
        }
        return w + 1L;
    }

    void ackWrite(long id, long event) {
        ackEvent[(int) (id - 1)] = event;
    }

    /** A flush submitted at {@code submitEvent} was acknowledged. */
    void ackFlush(long submitEvent) {
        flushHorizon = Math.max(flushHorizon, submitEvent);
    }

    /** Whether the write with index {@code w} is durable now. */
    private boolean durable(int w) {
        long ack = ackEvent[w];
        return ack != NOT_YET && (ack < flushHorizon || fua[w]);
    }

    /** Brings every sector's last durable write up to now: call before {@link #allowed} at a cut. */
    void advance() {
        for (int s = 0; s < history.length; s++) {
            for (int i = lastDurable[s] + 1; i < historyLength[s]; i++) {
                if (durable(history[s][i])) {
                    lastDurable[s] = i;
                }
            }
        }
    }

    /** Whether sector {@code s} may hold the value {@code id} after a power cut now ({@link #advance} first). */
    boolean allowed(int s, long id) {
        int from = lastDurable[s];
        if (from < 0 && id == SectorPattern.ZERO) {
            return true;
        }
        for (int i = Math.max(from, 0); i < historyLength[s]; i++) {
            if (value(history[s][i]) == id) {
                return true;
            }
        }
        return false;
    }

    /** What write {@code w} leaves in its sectors: its id, or zero. */
    private long value(int w) {
        return zeroes[w] ? SectorPattern.ZERO : w + 1L;
    }

    /** Whether {@code id} is sector {@code s}'s original content (zeroes) or a write that covered it. */
    boolean written(int s, long id) {
        return id == SectorPattern.ZERO
                || id > 0 && id <= writes && !zeroes[(int) (id - 1)]
                && Arrays.binarySearch(history[s] == null ? new int[0] : history[s], 0, historyLength[s],
                (int) (id - 1)) >= 0;
    }

    /**
     * Whether a read of sector {@code s} submitted at {@code readSubmitted} may return {@code id} now: the last write
     * acknowledged before the read was submitted, or one submitted after it.
     */
    boolean readable(int s, long id, long readSubmitted) {
        int from = historyLength[s] - 1;
        while (from >= 0 && ackEvent[history[s][from]] >= readSubmitted) {
            from--;
        }
        if (from < 0 && id == SectorPattern.ZERO) {
            return true;
        }
        for (int i = Math.max(from, 0); i < historyLength[s]; i++) {
            if (value(history[s][i]) == id) {
                return true;
            }
        }
        return false;
    }

    /** Sector {@code s}'s history for a failure message: ids, acknowledgement events and durability. */
    String describe(int s) {
        StringBuilder text = new StringBuilder("sector ").append(s).append(" (offset ").append((long) s * SECTOR)
                .append("): last durable index ").append(lastDurable[s]).append(", flush horizon event ")
                .append(flushHorizon).append(", writes [");
        for (int i = Math.max(0, historyLength[s] - 6); i < historyLength[s]; i++) {
            int w = history[s][i];
            text.append(' ').append(w + 1).append(fua[w] ? "F" : "").append(zeroes[w] ? "Z" : "").append("@ack")
                    .append(ackEvent[w] == NOT_YET ? "-" : Long.toString(ackEvent[w]));
        }
        return text.append(" ]").toString();
    }
}
