package org.pcache.cache;

import java.io.IOException;

/** A request the cache could not serve correctly, e.g. cached data whose CRC no longer matches. */
public class CacheIoException extends IOException {

    private static final long serialVersionUID = 1L;

    public CacheIoException(String message) {
        super(message);
    }

    public CacheIoException(String message, Throwable cause) {
        super(message, cause);
    }
}
