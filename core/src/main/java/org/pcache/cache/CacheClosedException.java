package org.pcache.cache;

import java.io.IOException;

/**
 * A request reached a cache that is closing or closed. An asynchronous call returns a future failed with it, a blocking
 * call throws it; it is an I/O failure like any other, not a signal to retry (a closed cache does not reopen).
 */
public final class CacheClosedException extends IOException {

    CacheClosedException(String message) {
        super(message);
    }
}
