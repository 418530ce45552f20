package org.pcache.backing;

/** The operations of an {@link IoEngine}, for test filters that act per kind. */
public enum EngineOp {
    READ,
    WRITE,
    FLUSH,
    DISCARD,
    WRITE_ZEROES
}
