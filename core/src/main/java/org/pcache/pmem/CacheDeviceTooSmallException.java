package org.pcache.pmem;

import java.io.IOException;

/** The cache device is smaller than dm-pcache's minimum ({@link CacheDeviceLayout#MIN_SIZE}); nothing was written. */
public class CacheDeviceTooSmallException extends IOException {

    private static final long serialVersionUID = 1L;

    private final long size;

    public CacheDeviceTooSmallException(long size) {
        super("cache device is too small: " + size + " bytes, at least " + CacheDeviceLayout.MIN_SIZE
                + " (512 MiB) needed");
        this.size = size;
    }

    /** The device's size in bytes. */
    public long size() {
        return size;
    }
}
