package org.pcache.backing;

/** Direction of a backing request. */
public enum BackingOp {
    READ,
    WRITE
}
