package org.pcache.cache;

/** When a write must be durable. */
public enum Durability {
    /** Durable after the next completed {@link Pcache#flushAsync()} (or within about a second, when its kset closes). */
    BUFFERED,
    /** Durable when the write completes (NBD's FUA flag). */
    FUA
}
