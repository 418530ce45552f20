package org.pcache.pmem;

import java.io.IOException;

/**
 * The existing cache was created with the other data_crc setting; dm-pcache refuses to change it on reopen ("invalid
 * option for data_crc"). Nothing was written.
 */
public class DataCrcMismatchException extends IOException {

    private static final long serialVersionUID = 1L;

    private final boolean requested;
    private final boolean existing;

    public DataCrcMismatchException(boolean requested, boolean existing) {
        super("invalid option for data_crc: requested " + requested + ", but the cache was created with " + existing);
        this.requested = requested;
        this.existing = existing;
    }

    public boolean requested() {
        return requested;
    }

    public boolean existing() {
        return existing;
    }
}
