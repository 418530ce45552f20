package org.pcache.cache;

/** Why a request went past the cache: its writes to the backing device, its read misses not kept. */
public enum BypassReason {
    /** The cache mode sends it there (write-around and pass-through writes, write-only and pass-through reads). */
    MODE,
    /** Its client's stream of contiguous requests passed the sequential cutoff. */
    SEQUENTIAL
}
