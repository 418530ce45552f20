package org.pcache.cache;

/**
 * A write, flush or drain reached a cache that failed ({@link CacheHealth}): nothing more is made durable until it is
 * restarted. An I/O error (NBD clients see EIO), not a signal to retry: the cache does not recover by itself.
 */
public final class CacheFailedException extends CacheIoException {

    private static final long serialVersionUID = 1L;

    CacheFailedException(String cause, Throwable error) {
        super("cache failed, nothing more is made durable (stop it, fix the cause, start it again to replay): "
                + cause, error);
    }
}
