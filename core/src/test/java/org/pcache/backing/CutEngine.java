package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A filter that loses power after a chosen number of writes and flushes (a discard or write-zeroes counts as a
 * write): those pass to {@code next}, every later one fails as on a disk that is gone. Stack it above a
 * {@link LossyEngine} and call its crash afterwards to get what the disk kept.
 *
 * <p>Threading: every method may be called from any thread.
 */
public final class CutEngine extends FilterEngine {

    private final long cutAfter;
    private final AtomicLong operations = new AtomicLong();
    private final CompletableFuture<Void> cut = new CompletableFuture<>();

    /** Passes the first {@code cutAfter} writes and flushes; {@link Long#MAX_VALUE} never cuts. */
    public CutEngine(IoEngine next, long cutAfter) {
        super(next);
        this.cutAfter = cutAfter;
    }

    /** Writes (discards and write-zeroes included) and flushes seen so far, passed or refused. */
    public long operations() {
        return operations.get();
    }

    /** Completes when the first operation past the cut arrives. */
    public CompletableFuture<Void> cut() {
        return cut;
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        if (pass()) {
            next.write(offset, src, done);
        } else {
            done.completed(new IOException("power cut: write offset=" + offset + " lost"));
        }
    }

    @Override
    public void flush(IoCallback done) {
        if (pass()) {
            next.flush(done);
        } else {
            done.completed(new IOException("power cut: flush lost"));
        }
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        if (pass()) {
            next.discard(offset, length, done);
        } else {
            done.completed(new IOException("power cut: discard offset=" + offset + " lost"));
        }
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        if (pass()) {
            next.writeZeroes(offset, length, done);
        } else {
            done.completed(new IOException("power cut: write-zeroes offset=" + offset + " lost"));
        }
    }

    private boolean pass() {
        if (operations.incrementAndGet() <= cutAfter) {
            return true;
        }
        cut.complete(null);
        return false;
    }
}
