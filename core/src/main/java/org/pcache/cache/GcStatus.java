package org.pcache.cache;

/**
 * What garbage collection is doing.
 *
 * @param state          running, stopped, or failed and why (GC stopped for good)
 * @param ksetsReclaimed ksets reclaimed since open
 * @param dataCrcErrors  reclaimed keys whose data no longer matched their CRC
 */
public record GcStatus(WorkerState state, long ksetsReclaimed, long dataCrcErrors) {
}
