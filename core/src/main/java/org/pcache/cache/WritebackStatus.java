package org.pcache.cache;

/**
 * What writeback is doing.
 *
 * @param state          running, stopped, or failed and why (writeback stopped for good)
 * @param dirtyBytes     bytes of dirty key records in the durable log not yet written back (overwritten data included)
 * @param bytesWritten   bytes written to the backing device since open
 * @param ksets          ksets written back since open
 * @param errors         backing errors met (each retried)
 * @param lastError      the latest backing error, or null
 * @param bytesPerSecond recent writeback throughput
 * @param batches        batches written back since open (each ends at a barrier, a cap or the end of the log)
 * @param backingFlushes backing device flushes writeback made since open (one per batch that wrote anything)
 * @param writesInFlight backing writes of writeback in flight now
 * @param depth          backing writes writeback keeps in flight at most (at or above the high watermark)
 * @param lowPercent     percent of the data area dirty below which writeback idles
 * @param highPercent    percent dirty from which writeback keeps its full depth in flight
 */
public record WritebackStatus(WorkerState state, long dirtyBytes, long bytesWritten, long ksets, long errors,
                              String lastError, double bytesPerSecond, long batches, long backingFlushes,
                              int writesInFlight, int depth, int lowPercent, int highPercent) {

    /** Backing flushes per GiB written back since open; 0 before anything was written. */
    public double flushesPerGib() {
        return bytesWritten == 0 ? 0 : backingFlushes * (double) (1L << 30) / bytesWritten;
    }
}
