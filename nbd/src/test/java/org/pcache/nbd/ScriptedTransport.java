package org.pcache.nbd;

import java.nio.ByteBuffer;

/**
 * A transport that reads a fixed byte stream, at most {@code maxRead} bytes per read (so every split of a message
 * across reads is exercised), then end of stream; writes are counted and dropped. For fuzz targets.
 *
 * <p>Threading: one thread.
 */
final class ScriptedTransport implements NbdTransport {

    private final ByteBuffer input;
    private final int maxRead;
    private long written;

    ScriptedTransport(byte[] input, int maxRead) {
        this.input = ByteBuffer.wrap(input);
        this.maxRead = Math.max(1, maxRead);
    }

    @Override
    public int read(ByteBuffer dst) {
        if (!dst.hasRemaining()) {
            return 0;
        }
        if (!input.hasRemaining()) {
            return -1;
        }
        int n = Math.min(Math.min(dst.remaining(), input.remaining()), maxRead);
        dst.put(dst.position(), input, input.position(), n);
        dst.position(dst.position() + n);
        input.position(input.position() + n);
        return n;
    }

    @Override
    public void write(ByteBuffer src) {
        written += src.remaining();
        src.position(src.limit());
    }

    @Override
    public void write(ByteBuffer[] srcs, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            write(srcs[i]);
        }
    }

    long written() {
        return written;
    }

    @Override
    public void shutdownInput() {
        input.position(input.limit());
    }

    @Override
    public void shutdownOutput() {
    }

    @Override
    public void close() {
        input.position(input.limit());
    }
}
