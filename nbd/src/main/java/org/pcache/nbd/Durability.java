package org.pcache.nbd;

/** When a write may be acknowledged: once it is visible to reads, or only once it is persistent (FUA). */
public enum Durability {
    /** Acknowledge when later reads see the data; a FLUSH makes it persistent. */
    BUFFERED,
    /** Acknowledge only after the data is persistent (NBD_CMD_FLAG_FUA). */
    FUA
}
