package org.pcache.pmem;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A {@link PmemRegion} in front of another (usually the power-cut simulator) that fails on demand the way a real
 * region fails: a drain that throws instead of making anything durable (a failed msync), and memory accesses that
 * raise the {@link InternalError} with which the JVM reports a SIGBUS (a truncated cache file, a full tmpfs, a poisoned
 * page). It also stalls flushes on demand (a slow write-back of cache lines). Everything else passes through.
 *
 * <p>A failed drain drains nothing: the stores it was to make durable stay at risk in the simulator, as the dirty
 * pages a failed msync may have dropped.
 *
 * <p>Threading: as the region behind it; faults may be armed from any thread.
 */
public final class FaultyPmemRegion implements PmemRegion {

    /** A drain to fail once: the first one called through a method named {@code caller} (any, when null). */
    private record DrainFault(String caller, RuntimeException error) {
    }

    private final PmemRegion region;
    private final AtomicReference<DrainFault> drainFault = new AtomicReference<>();
    private volatile CompletableFuture<Void> drainFailed = new CompletableFuture<>();
    /** Accesses at or past this offset fault; Long.MAX_VALUE for none. */
    private volatile long faultFrom = Long.MAX_VALUE;
    private volatile CompletableFuture<Void> accessFaulted = new CompletableFuture<>();
    /** Flushes called on this thread wait for flushRelease; null for none. */
    private volatile Thread flushHeldOn;
    private volatile CountDownLatch flushRelease = new CountDownLatch(0);
    private volatile CompletableFuture<Void> flushHeld = new CompletableFuture<>();

    public FaultyPmemRegion(PmemRegion region) {
        this.region = region;
    }

    /**
     * The next drain called (directly or through {@link #persist}) from a method named {@code caller}, or the next
     * drain at all when {@code caller} is null, throws {@code error} without draining; only that one.
     */
    public void failDrain(String caller, RuntimeException error) {
        drainFailed = new CompletableFuture<>();
        drainFault.set(new DrainFault(caller, Objects.requireNonNull(error)));
    }

    /** Completes once the armed drain fault fired. */
    public CompletableFuture<Void> drainFailed() {
        return drainFailed;
    }

    /** From now on every read, store and flush that touches {@code [offset, size)} raises a SIGBUS's InternalError. */
    public void faultFrom(long offset) {
        accessFaulted = new CompletableFuture<>();
        faultFrom = offset;
    }

    /** Completes once an access faulted. */
    public CompletableFuture<Void> accessFaulted() {
        return accessFaulted;
    }

    /** From now on every flush called on {@code thread} waits until {@link #releaseFlushes()}. */
    public void holdFlushesOn(Thread thread) {
        flushHeld = new CompletableFuture<>();
        flushRelease = new CountDownLatch(1);
        flushHeldOn = thread;
    }

    /** Completes once a flush is waiting for {@link #releaseFlushes()}. */
    public CompletableFuture<Void> flushHeld() {
        return flushHeld;
    }

    /** Lets the held flushes, and every later one, go on. */
    public void releaseFlushes() {
        flushHeldOn = null;
        flushRelease.countDown();
    }

    @Override
    public long size() {
        return region.size();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        access(offset, length);
        region.write(offset, src, srcOffset, length);
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        access(offset, length);
        region.read(offset, dst, dstOffset, length);
    }

    @Override
    public void zero(long offset, long length) {
        access(offset, length);
        region.zero(offset, length);
    }

    @Override
    public long getLongAcquire(long offset) {
        access(offset, Long.BYTES);
        return region.getLongAcquire(offset);
    }

    @Override
    public void putLongRelease(long offset, long value) {
        access(offset, Long.BYTES);
        region.putLongRelease(offset, value);
    }

    @Override
    public void flush(long offset, long length) {
        access(offset, length);
        if (Thread.currentThread() == flushHeldOn) {
            flushHeld.complete(null);
            try {
                flushRelease.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while a flush was held", e);
            }
        }
        region.flush(offset, length);
    }

    @Override
    public void drain() {
        DrainFault fault = drainFault.get();
        if (fault != null && calledFrom(fault.caller()) && drainFault.compareAndSet(fault, null)) {
            drainFailed.complete(null);
            throw fault.error();
        }
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

    @Override
    public String toString() {
        return "FaultyPmemRegion[" + region + "]";
    }

    private void access(long offset, long length) {
        if (length > 0 && offset + length > faultFrom) {
            accessFaulted.complete(null);
            throw new InternalError("a fault occurred in an unsafe memory access operation");
        }
    }

    private static boolean calledFrom(String caller) {
        return caller == null || StackWalker.getInstance().walk(frames -> frames.anyMatch(
                frame -> frame.getMethodName().equals(caller)));
    }
}
