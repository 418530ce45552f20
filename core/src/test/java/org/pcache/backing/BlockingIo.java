package org.pcache.backing;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

/**
 * Runs one engine operation and waits for its callback, for tests and test filters that need an answer now.
 * Fails instead of hanging when the engine does not call back within {@link #TIMEOUT_SECONDS}.
 */
public final class BlockingIo {

    public static final long TIMEOUT_SECONDS = 10;

    private BlockingIo() {
    }

    public static void read(IoEngine engine, long offset, MemorySegment dst) throws IOException {
        await(done -> engine.read(offset, dst, done), "read offset=" + offset);
    }

    public static void write(IoEngine engine, long offset, MemorySegment src) throws IOException {
        await(done -> engine.write(offset, src, done), "write offset=" + offset);
    }

    public static void discard(IoEngine engine, long offset, long length) throws IOException {
        await(done -> engine.discard(offset, length, done), "discard offset=" + offset);
    }

    public static void writeZeroes(IoEngine engine, long offset, long length) throws IOException {
        await(done -> engine.writeZeroes(offset, length, done), "write-zeroes offset=" + offset);
    }

    public static void flush(IoEngine engine) throws IOException {
        await(engine::flush, "flush");
    }

    /** The engine's allocation map of the range (one call: possibly a prefix). */
    public static List<BackingExtent> allocation(IoEngine engine, long offset, long length) throws Exception {
        CompletableFuture<List<BackingExtent>> done = new CompletableFuture<>();
        engine.allocation(offset, length, (extents, error) -> {
            if (error != null) {
                done.completeExceptionally(error);
            } else {
                done.complete(extents);
            }
        });
        return done.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }

    private static void await(Consumer<IoEngine.IoCallback> operation, String what) throws IOException {
        CompletableFuture<IOException> done = new CompletableFuture<>();
        operation.accept(done::complete);
        IOException error;
        try {
            error = done.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException(what + " interrupted");
        } catch (TimeoutException e) {
            throw new IOException(what + ": engine did not call back within " + TIMEOUT_SECONDS + " s", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException(what + ": callback failed", e);
        }
        if (error != null) {
            throw error;
        }
    }
}
