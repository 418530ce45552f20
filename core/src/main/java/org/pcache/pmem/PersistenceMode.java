package org.pcache.pmem;

/** How a {@link PmemRegion} makes stores durable. */
public enum PersistenceMode {
    /** A DAX mapping with MAP_SYNC: flushing the CPU cache lines makes stores durable. */
    MAP_SYNC,
    /** A shared file mapping: {@code msync} of the flushed ranges makes stores durable. */
    MSYNC,
    /** The in-process power-cut simulator used by tests. */
    SIMULATED,
    /** A read-only mapping for offline inspection: every store fails, nothing is made durable. */
    READ_ONLY
}
