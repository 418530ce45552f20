package org.pcache.cache;

import java.util.Arrays;

/**
 * Sequential stream detection for read-ahead (the kernel's readahead window, for the cache's misses): remembers where
 * the last few streams of reads ended, and when a read that missed continues one of them, names the range past the
 * stream's window to read into the cache beside the reply. A read that starts where no stream ended starts a new one,
 * so random reads never read ahead.
 *
 * <p>Invariants: a stream's window only moves forward; a range is named at most once per stream (the next one starts
 * where the window ended), never past the device, and only once the stream has {@link #SEQUENTIAL_READS} reads in a
 * row. A new window is opened when less than half of the current one is still ahead of the reader, so a stream that
 * keeps reading finds its data in the cache.
 *
 * <p>Threading: {@link #next} from any reader thread; the table is guarded by this.
 */
final class ReadAhead {

    /** Reads in a row at the end of one another that make a stream. */
    static final int SEQUENTIAL_READS = 2;
    /** Streams remembered at once; the oldest is forgotten for a new one. */
    private static final int STREAMS = 8;

    private final long window;
    private final long deviceSize;
    /** Where each stream's last read ended (-1: slot unused). */
    private final long[] nextOffset = new long[STREAMS];
    /** Where each stream's read-ahead window ends. */
    private final long[] windowEnd = new long[STREAMS];
    private final int[] reads = new int[STREAMS];
    /** The slot a new stream takes next (round robin: the oldest). */
    private int victim;

    ReadAhead(long window, long deviceSize) {
        this.window = window;
        this.deviceSize = deviceSize;
        Arrays.fill(nextOffset, -1);
    }

    /**
     * Records the read {@code [offset, offset + length)}; returns the start of the range of {@link #window()} bytes
     * (less at the device's end) to read ahead now, or -1 for none. {@code missed}: part of the read came from the
     * backing device (a read that hit entirely only moves its stream along).
     */
    synchronized long next(long offset, long length, boolean missed) {
        long end = offset + length;
        for (int i = 0; i < STREAMS; i++) {
            if (nextOffset[i] == offset) {
                nextOffset[i] = end;
                reads[i]++;
                long from = Math.max(end, windowEnd[i]);
                boolean due = windowEnd[i] - end < window / 2;
                if (reads[i] < SEQUENTIAL_READS || !due || (!missed && windowEnd[i] <= end) || from >= deviceSize) {
                    return -1;
                }
                windowEnd[i] = Math.min(deviceSize, from + window);
                return from;
            }
        }
        int slot = victim;
        victim = (victim + 1) % STREAMS;
        nextOffset[slot] = end;
        windowEnd[slot] = end;
        reads[slot] = 1;
        return -1;
    }

    /** The read-ahead size. */
    long window() {
        return window;
    }
}
