package org.pcache.cache;

/**
 * Writeback throughput as an exponentially weighted average over about {@value #TAU_SECONDS} seconds of wall-clock
 * time, decaying towards zero while nothing is written back.
 *
 * <p>Threading: synchronised; updated by the writeback thread, read by status.
 */
final class WritebackRate {

    private static final double TAU_SECONDS = 2.0;
    private static final double TAU_NANOS = TAU_SECONDS * 1e9;

    private long lastNanos = System.nanoTime();
    private double bytesPerSecond;

    /** {@code bytes} were written back just now. */
    synchronized void record(long bytes) {
        long now = System.nanoTime();
        long elapsed = Math.max(1, now - lastNanos);
        double instant = bytes * 1e9 / elapsed;
        double weight = 1 - Math.exp(-elapsed / TAU_NANOS);
        bytesPerSecond += weight * (instant - bytesPerSecond);
        lastNanos = now;
    }

    synchronized double bytesPerSecond() {
        long idle = System.nanoTime() - lastNanos;
        return bytesPerSecond * Math.exp(-idle / TAU_NANOS);
    }
}
