package org.pcache.backing;

/** The three operations of an {@link IoEngine}, for test filters that act per kind. */
public enum EngineOp {
    READ,
    WRITE,
    FLUSH
}
