package org.pcache.cache;

import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A {@link PmemRegion} in front of another whose next {@link #write} after {@link #holdNextWrite} waits until
 * {@link #release}: a store into the region that takes as long as a test needs (a page fault on a slow file system, a
 * region under memory pressure), without sleeping. Everything else passes straight through.
 *
 * <p>Threading: as the region behind it; hold and release may be called from any thread.
 */
final class HeldStoreRegion implements PmemRegion {

    private final PmemRegion region;
    private final CountDownLatch held = new CountDownLatch(1);
    private final CountDownLatch released = new CountDownLatch(1);
    private volatile boolean armed;

    HeldStoreRegion(PmemRegion region) {
        this.region = region;
    }

    /** The next write waits in {@link #write} until {@link #release}; only that one. */
    void holdNextWrite() {
        armed = true;
    }

    /** Waits until the armed write is being held; false on timeout. */
    boolean awaitHeld(long timeout, TimeUnit unit) throws InterruptedException {
        return held.await(timeout, unit);
    }

    /** Lets the held write (and every later one) go on. */
    void release() {
        released.countDown();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        if (armed) {
            synchronized (this) {
                if (armed) {
                    armed = false;
                    held.countDown();
                    awaitRelease();
                }
            }
        }
        region.write(offset, src, srcOffset, length);
    }

    private void awaitRelease() {
        try {
            if (!released.await(CacheHarness.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError("held write never released");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while held", e);
        }
    }

    @Override
    public long size() {
        return region.size();
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        region.read(offset, dst, dstOffset, length);
    }

    @Override
    public void zero(long offset, long length) {
        region.zero(offset, length);
    }

    @Override
    public long getLongAcquire(long offset) {
        return region.getLongAcquire(offset);
    }

    @Override
    public void putLongRelease(long offset, long value) {
        region.putLongRelease(offset, value);
    }

    @Override
    public void flush(long offset, long length) {
        region.flush(offset, length);
    }

    @Override
    public void drain() {
        region.drain();
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
}
