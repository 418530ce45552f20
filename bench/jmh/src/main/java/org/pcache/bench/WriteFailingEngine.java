package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

import org.pcache.backing.IoEngine;

/**
 * A backing store whose writes always fail: a cache in front of it keeps everything dirty (writeback retries and
 * never moves dirty_tail), which is how the writeback benchmarks build an image with a known backlog.
 */
final class WriteFailingEngine implements IoEngine {

    private final long size;

    WriteFailingEngine(long size) {
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
        done.completed(new IOException("writes refused while the benchmark image is built"));
    }

    @Override
    public void flush(IoCallback done) {
        done.completed(null);
    }

    @Override
    public void close() {
    }

    @Override
    public String toString() {
        return "write-failing size=" + size;
    }
}
