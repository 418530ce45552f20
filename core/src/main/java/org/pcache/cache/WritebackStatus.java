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
 */
public record WritebackStatus(WorkerState state, long dirtyBytes, long bytesWritten, long ksets, long errors,
                              String lastError, double bytesPerSecond) {
}
