package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A test export over {@link MemoryExport} whose reads stay pending until the test opens them, in any order:
 * proves requests in flight, out-of-order replies, back-pressure and draining on stop.
 *
 * <p>Threading: pending reads are guarded by {@code this}; {@link #arrived} counts reads that reached it.
 */
final class GatedExport implements NbdExport {

    private final MemoryExport memory;
    /** Reads waiting for the test, in arrival order; guarded by this. */
    private final List<Runnable> pending = new ArrayList<>();
    private final Semaphore arrived = new Semaphore(0);
    private int maxPending;

    GatedExport(MemoryExport memory) {
        this.memory = memory;
    }

    /** Waits until {@code count} more reads have arrived. */
    boolean awaitReads(int count, long timeoutSeconds) throws InterruptedException {
        return arrived.tryAcquire(count, timeoutSeconds, TimeUnit.SECONDS);
    }

    synchronized int pendingReads() {
        return pending.size();
    }

    /** Most reads ever pending at once. */
    synchronized int maxPending() {
        return maxPending;
    }

    /** Completes the pending reads, last arrived first. */
    void openInReverse() {
        List<Runnable> reads;
        synchronized (this) {
            reads = new ArrayList<>(pending);
            pending.clear();
        }
        for (int i = reads.size() - 1; i >= 0; i--) {
            reads.get(i).run();
        }
    }

    @Override
    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        CompletableFuture<Void> future = new CompletableFuture<>();
        synchronized (this) {
            pending.add(() -> memory.read(offset, dst).whenComplete((ignored, failure) -> {
                if (failure == null) {
                    future.complete(null);
                } else {
                    future.completeExceptionally(failure);
                }
            }));
            maxPending = Math.max(maxPending, pending.size());
        }
        arrived.release();
        return future;
    }

    @Override
    public String name() {
        return memory.name();
    }

    @Override
    public String description() {
        return memory.description();
    }

    @Override
    public long size() {
        return memory.size();
    }

    @Override
    public Set<Capability> capabilities() {
        return memory.capabilities();
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        return memory.write(offset, src, durability);
    }

    @Override
    public CompletableFuture<Void> flush() {
        return memory.flush();
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        return memory.trim(offset, length, durability);
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        return memory.writeZeroes(offset, length, durability);
    }
}
