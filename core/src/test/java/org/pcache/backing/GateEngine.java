package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A filter that holds every operation while it is shut (as it starts) and passes them to {@code next} when
 * {@link #open} is called, on the opening thread; while open, operations pass straight through on the caller's
 * thread. A way for tests to keep requests in flight for as long as they need, without sleeping. It also counts how
 * often it was closed (as an engine).
 *
 * <p>Threading: every method may be called from any thread.
 */
public final class GateEngine extends FilterEngine {

    /** Guarded by this. */
    private final List<Runnable> held = new ArrayList<>();
    /** Guarded by this. */
    private boolean open;
    /** Guarded by this. */
    private int closes;
    private final CountDownLatch heldLatch;

    /** A shut gate; {@link #awaitHeld} returns once {@code expectedHeld} operations have been held. */
    public GateEngine(IoEngine next, int expectedHeld) {
        super(next);
        this.heldLatch = new CountDownLatch(expectedHeld);
    }

    /** Waits until the expected number of operations is held; false on timeout. */
    public boolean awaitHeld(long timeout, TimeUnit unit) throws InterruptedException {
        return heldLatch.await(timeout, unit);
    }

    /** Passes every held operation on, in arrival order, and lets later ones through at once. */
    public void open() {
        List<Runnable> released;
        synchronized (this) {
            open = true;
            released = new ArrayList<>(held);
            held.clear();
        }
        released.forEach(Runnable::run);
    }

    /** Holds later operations again, until the next {@link #open}. */
    public synchronized void shut() {
        open = false;
    }

    public synchronized int held() {
        return held.size();
    }

    public synchronized int closes() {
        return closes;
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        pass(() -> next.read(offset, dst, done));
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        pass(() -> next.write(offset, src, done));
    }

    @Override
    public void flush(IoCallback done) {
        pass(() -> next.flush(done));
    }

    @Override
    public void discard(long offset, long length, IoCallback done) {
        pass(() -> next.discard(offset, length, done));
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        pass(() -> next.writeZeroes(offset, length, done));
    }

    @Override
    public void close() throws IOException {
        synchronized (this) {
            closes++;
        }
        next.close();
    }

    private void pass(Runnable operation) {
        synchronized (this) {
            if (!open) {
                held.add(operation);
                heldLatch.countDown();
                return;
            }
        }
        operation.run();
    }
}
