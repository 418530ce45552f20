package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * The base of the test filters (like an nbdkit filter): every operation passes to {@code next} unchanged, and a
 * filter overrides only the operations whose behaviour it changes.
 *
 * <p>Threading: as {@code next}; a subclass states its own.
 */
public abstract class FilterEngine implements IoEngine {

    protected final IoEngine next;

    protected FilterEngine(IoEngine next) {
        this.next = next;
    }

    @Override
    public long size() {
        return next.size();
    }

    @Override
    public void allocation(long offset, long length, AllocationCallback done) {
        next.allocation(offset, length, done);
    }

    @Override
    public BackingConnection connection() {
        return next.connection();
    }

    @Override
    public int alignment() {
        return next.alignment();
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        next.read(offset, dst, done);
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        next.write(offset, src, done);
    }

    @Override
    public void flush(IoCallback done) {
        next.flush(done);
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        next.discard(offset, length, done);
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        next.writeZeroes(offset, length, done);
    }

    @Override
    public boolean supportsDiscard() {
        return next.supportsDiscard();
    }

    @Override
    public boolean supportsWriteZeroes() {
        return next.supportsWriteZeroes();
    }

    @Override
    public void close() throws IOException {
        next.close();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + " over " + next;
    }
}
