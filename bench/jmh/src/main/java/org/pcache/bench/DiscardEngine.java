package org.pcache.bench;

import java.lang.foreign.MemorySegment;

import org.pcache.backing.IoEngine;

/**
 * A backing store that keeps nothing: writes vanish, reads return zeroes. For benchmarks whose subject never reads
 * the backing device back (replay, heap footprint) and that need a large device without its memory.
 */
class DiscardEngine implements IoEngine {

    private final long size;

    DiscardEngine(long size) {
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int alignment() {
        return 1;
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        dst.fill((byte) 0);
        done.completed(null);
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        done.completed(null);
    }

    @Override
    public void flush(IoCallback done) {
        done.completed(null);
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        done.completed(null);
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        done.completed(null);
    }

    @Override
    public boolean supportsDiscard() {
        return true;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return true;
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "discard size=" + size;
    }
}
