package org.pcache.nbd;

/**
 * What a {@link PcacheExport} does with a client's TRIM ({@code pcache serve --discard}), as dm's and qemu's
 * {@code discard} settings do.
 */
public enum DiscardPolicy {
    /**
     * The cache records the discard without data and drops what it held of the range, which then reads as zeroes;
     * writeback passes the discard on to the backing device (a hole punched in a file, NBD_CMD_TRIM to an NBD
     * server), in log order. A backing device that cannot discard gets nothing.
     */
    PASSDOWN,
    /** The TRIM is accepted and dropped: nothing changes, in the cache or on the backing device; the data stays. */
    IGNORE
}
