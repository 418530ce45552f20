package org.pcache.cache;

import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.RegionFailedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;

/**
 * The cache's region, fail-stop: the cache's {@link CacheHealth}. Every access of the running cache to its region goes
 * through here (the open wraps the region before anything reads it).
 *
 * <p>Invariant: once failed, never healthy again, and nothing more is stored, flushed or drained: every store, flush
 * and drain throws {@link RegionFailedException} without reaching the region. So no kset, tail or generation is
 * written after the first failure, and a persistence operation that succeeds after a failed one is never trusted.
 * Reads go on reaching the region (what the cache holds stays readable where the memory can still be read).
 *
 * <p>What fails it: any exception or error from a store, flush or drain (its outcome is unknown, so nothing it was to
 * make durable can be counted on), a fault of a read ({@link RegionFailedException}, {@link UncheckedIOException},
 * {@link InternalError}: SIGBUS), and {@link #fail} from a background job that stopped for good. The first failure is
 * logged once, at ERROR, and its cause kept for status; later ones only fail their caller.
 *
 * <p>Threading: every method may be called from any thread; the failure is published through a volatile field, and
 * the listener runs once, on the thread that failed it.
 */
final class FailStopRegion implements PmemRegion {

    private static final Logger LOG = LoggerFactory.getLogger(FailStopRegion.class);

    private final PmemRegion region;
    private final Object lock = new Object();
    /** The first failure, or null while healthy; written once, under lock. */
    private volatile Failure failure;
    /** Run once when the cache fails; set by the cache as it is built, before anything can fail it but the open. */
    private volatile Runnable onFailure = () -> { };

    private record Failure(CacheHealth health, Throwable error) {
    }

    FailStopRegion(PmemRegion region) {
        this.region = region;
    }

    /** Runs {@code listener} once, on the thread that fails the cache, after the failure is recorded. */
    void onFailure(Runnable listener) {
        this.onFailure = listener;
    }

    /** Whether the cache is healthy or failed, and why. */
    CacheHealth health() {
        Failure failed = failure;
        return failed == null ? CacheHealth.HEALTHY : failed.health();
    }

    boolean failed() {
        return failure != null;
    }

    /** The error for a request that reached the failed cache. */
    CacheFailedException exception() {
        Failure failed = failure;
        return new CacheFailedException(failed.health().cause(), failed.error());
    }

    /**
     * Fails the cache for good because of {@code error}, met while doing {@code what}, unless it failed already;
     * returns the exception for the caller to throw.
     */
    RegionFailedException fail(String what, Throwable error) {
        String cause = what + ": " + (error.getMessage() == null ? error.toString() : error.getMessage());
        boolean first = false;
        synchronized (lock) {
            if (failure == null) {
                failure = new Failure(CacheHealth.failed(cause), error);
                first = true;
            }
        }
        if (first) {
            LOG.error("cache failed, nothing more is written to its region until it is restarted: {}", cause, error);
            onFailure.run();
        }
        return error instanceof RegionFailedException failed ? failed : new RegionFailedException(cause, error);
    }

    @Override
    public long size() {
        return region.size();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        refuseIfFailed();
        try {
            region.write(offset, src, srcOffset, length);
        } catch (RuntimeException | Error e) {
            throw fail("a store into the region failed", e);
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        try {
            region.read(offset, dst, dstOffset, length);
        } catch (UncheckedIOException | InternalError e) {
            throw fail("a read of the region failed", e);
        }
    }

    @Override
    public void zero(long offset, long length) {
        refuseIfFailed();
        try {
            region.zero(offset, length);
        } catch (RuntimeException | Error e) {
            throw fail("a store into the region failed", e);
        }
    }

    @Override
    public long getLongAcquire(long offset) {
        try {
            return region.getLongAcquire(offset);
        } catch (UncheckedIOException | InternalError e) {
            throw fail("a read of the region failed", e);
        }
    }

    @Override
    public void putLongRelease(long offset, long value) {
        refuseIfFailed();
        try {
            region.putLongRelease(offset, value);
        } catch (RuntimeException | Error e) {
            throw fail("a store into the region failed", e);
        }
    }

    @Override
    public void flush(long offset, long length) {
        refuseIfFailed();
        try {
            region.flush(offset, length);
        } catch (RuntimeException | Error e) {
            throw fail("a flush of the region failed", e);
        }
    }

    @Override
    public void drain() {
        refuseIfFailed();
        try {
            region.drain();
        } catch (RuntimeException | Error e) {
            throw fail("a drain of the region failed", e);
        }
    }

    @Override
    public MemorySegment view(long offset, long length) {
        return region.view(offset, length);
    }

    @Override
    public PersistenceMode mode() {
        return region.mode();
    }

    @Override
    public void close() {
        region.close();
    }

    @Override
    public String toString() {
        return region.toString();
    }

    private void refuseIfFailed() {
        Failure failed = failure;
        if (failed != null) {
            throw refusal(failed);
        }
    }

    private static RegionFailedException refusal(Failure failed) {
        return new RegionFailedException("the cache failed earlier, nothing more is written to its region: "
                + failed.health().cause(), failed.error());
    }
}
