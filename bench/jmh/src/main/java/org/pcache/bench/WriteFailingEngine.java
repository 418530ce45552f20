package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.MemorySegment;

/**
 * A {@link DiscardEngine} whose writes always fail: a cache in front of it keeps everything dirty (writeback retries
 * and never moves dirty_tail), which is how the writeback benchmarks build an image with a known backlog.
 */
final class WriteFailingEngine extends DiscardEngine {

    WriteFailingEngine(long size) {
        super(size);
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        done.completed(new IOException("writes refused while the benchmark image is built"));
    }

    @Override
    public String toString() {
        return "write-failing size=" + size();
    }
}
