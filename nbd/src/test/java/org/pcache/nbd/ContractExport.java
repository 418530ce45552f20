package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;

/**
 * Wraps an export, checks every call against the {@link NbdExport} contract (aligned to {@link NbdExport#BLOCK_SIZE},
 * at most {@link NbdExport#MAX_LENGTH}, inside the export), records it, and runs it on {@code executor} so that
 * completions arrive on other threads and concurrent requests interleave. A call breaking the contract fails its
 * future and is recorded in {@link #violations()}.
 */
final class ContractExport implements NbdExport {

    /** One call the export received. */
    record Call(String operation, long offset, long length) {
    }

    private final NbdExport delegate;
    private final Executor executor;
    private final Queue<Call> calls = new ConcurrentLinkedQueue<>();
    private final Queue<String> violations = new ConcurrentLinkedQueue<>();

    ContractExport(NbdExport delegate, Executor executor) {
        this.delegate = delegate;
        this.executor = executor;
    }

    List<Call> calls() {
        return List.copyOf(calls);
    }

    List<String> violations() {
        return List.copyOf(violations);
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public String description() {
        return delegate.description();
    }

    @Override
    public long size() {
        return delegate.size();
    }

    @Override
    public Set<Capability> capabilities() {
        return delegate.capabilities();
    }

    @Override
    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        return call("read", offset, dst.byteSize(), () -> delegate.read(offset, dst));
    }

    @Override
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        return call("write", offset, src.byteSize(), () -> delegate.write(offset, src, durability));
    }

    @Override
    public CompletableFuture<Void> flush() {
        return delegate.flush();
    }

    @Override
    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        return call("trim", offset, length, () -> delegate.trim(offset, length, durability));
    }

    @Override
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        return call("writeZeroes", offset, length, () -> delegate.writeZeroes(offset, length, durability));
    }

    @Override
    public CompletableFuture<Void> cache(long offset, long length) {
        return call("cache", offset, length, () -> delegate.cache(offset, length));
    }

    @Override
    public CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
        String violation = violation(offset, length);
        calls.add(new Call("blockStatus", offset, length));
        if (violation != null) {
            violations.add(violation);
            return CompletableFuture.failedFuture(new IllegalArgumentException(violation));
        }
        return delegate.blockStatus(offset, length);
    }

    private CompletableFuture<Void> call(String operation, long offset, long length,
                                         java.util.function.Supplier<CompletableFuture<Void>> body) {
        calls.add(new Call(operation, offset, length));
        String violation = violation(offset, length);
        if (violation != null) {
            violations.add(operation + " " + violation);
            return CompletableFuture.failedFuture(new IllegalArgumentException(violation));
        }
        return CompletableFuture.supplyAsync(body, executor).thenCompose(future -> future);
    }

    private String violation(long offset, long length) {
        if (offset % BLOCK_SIZE != 0 || length % BLOCK_SIZE != 0 || length <= 0 || length > MAX_LENGTH
                || offset < 0 || offset > size() - length) {
            return "[" + offset + ", +" + length + ")";
        }
        return null;
    }
}
