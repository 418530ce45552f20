package org.pcache.backing;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * A request from the layer above (dm-pcache's pcache_request): a buffer that stands for
 * {@code [offset, offset + data.byteSize())} of the backing address space, reference counted so that it
 * completes exactly once, when the last reference is released, with the first error any holder reported.
 *
 * <p>Threading: {@link #retain} and {@link #release} may be called from any thread. The completion runs on
 * the thread that releases the last reference.
 */
public final class UpperRequest {

    private final long offset;
    private final MemorySegment data;
    private final Consumer<Throwable> onComplete;
    private final AtomicInteger refs = new AtomicInteger(1);
    private final AtomicReference<Throwable> firstError = new AtomicReference<>();

    /** Starts with one reference, owned by the creator. */
    public UpperRequest(long offset, MemorySegment data, Consumer<Throwable> onComplete) {
        this.offset = offset;
        this.data = data;
        this.onComplete = onComplete;
    }

    public long offset() {
        return offset;
    }

    public MemorySegment data() {
        return data;
    }

    public void retain() {
        if (refs.getAndIncrement() <= 0) {
            throw new IllegalStateException("retain of a completed request at offset " + offset);
        }
    }

    /** Drops one reference; {@code error} (null for success) is kept if it is the first one reported. */
    public void release(Throwable error) {
        if (error != null) {
            firstError.compareAndSet(null, error);
        }
        int left = refs.decrementAndGet();
        if (left == 0) {
            onComplete.accept(firstError.get());
        } else if (left < 0) {
            throw new IllegalStateException("release of a completed request at offset " + offset);
        }
    }
}
