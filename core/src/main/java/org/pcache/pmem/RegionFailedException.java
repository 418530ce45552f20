package org.pcache.pmem;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The region can no longer be trusted to make stores durable: a persistence operation failed (an msync, a MAP_SYNC
 * flush), or a memory access of the mapping faulted (SIGBUS: the cache file was truncated, its file system is full, a
 * page is poisoned). After a failed msync Linux may already have dropped the dirty pages, so a later success proves
 * nothing: whoever meets this must stop making anything durable on the region (fail-stop, like a database after a
 * failed fsync). What was durable before stays durable; the next open replays to it.
 */
public final class RegionFailedException extends UncheckedIOException {

    private static final long serialVersionUID = 1L;

    /** A failure described by {@code message}, caused by {@code cause} (an I/O error, or the JVM's InternalError). */
    public RegionFailedException(String message, Throwable cause) {
        super(message, cause instanceof IOException io ? io : new IOException(cause.toString(), cause));
    }
}
