package org.pcache.nbd;

import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.pcache.backing.BackingConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link NbdEngine}'s connection to its server: the client in use while it works, and a new one made when it breaks.
 * When the client breaks (the server closed the connection or went away, a protocol error, a request timeout) the
 * link is {@link State#DISCONNECTED} and a reconnect thread ({@code pcache-nbd-reconnect}) connects again with a
 * growing back-off, 100 ms doubling up to 5 s, forever. A new connection is taken only if the export is the one the
 * engine opened: same size, same minimum block size, still writable if it was; otherwise it is closed and the link
 * keeps trying (and says why in {@link #connection()}).
 *
 * <p>Ordering: requests in flight when the connection broke fail to their callers (writeback writes the same data
 * again, which is idempotent); nothing is resent here. A request that failed may still have reached the server.
 *
 * <p>Threading: {@link #client()} from any thread; the state moves under {@code this}.
 */
final class NbdLink implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdLink.class);

    private static final long BACKOFF_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(5);

    enum State { CONNECTED, DISCONNECTED, CLOSED }

    /** What the link connects to, and with which timeouts. */
    interface Connector {
        NbdClient connect() throws IOException;
    }

    private final Connector connector;
    private final NbdUri uri;
    private final long size;
    private final int minimumBlockSize;
    private final boolean writable;
    private final AtomicLong reconnects = new AtomicLong();
    /** Guarded by this. */
    private State state = State.CONNECTED;
    /** Guarded by this; the broken one while DISCONNECTED, until it is closed. */
    private NbdClient client;
    /** Why the link was last disconnected, or why a new connection was refused; guarded by this. */
    private String lastError;
    /** Guarded by this. */
    private Thread reconnector;

    NbdLink(NbdClient first, Connector connector) {
        this.connector = connector;
        this.uri = first.uri();
        this.size = first.size();
        this.minimumBlockSize = first.minimumBlockSize();
        this.writable = !first.has(NbdProtocol.FLAG_READ_ONLY);
        this.client = first;
        watch(first);
    }

    /** The client to send on, or null while disconnected (then {@link #connection()} says why). */
    synchronized NbdClient client() {
        return state == State.CONNECTED ? client : null;
    }

    /** The client made first, or in use now: for what does not change across reconnects. */
    synchronized NbdClient any() {
        return client;
    }

    synchronized BackingConnection connection() {
        return new BackingConnection(state == State.CONNECTED ? BackingConnection.State.CONNECTED
                : BackingConnection.State.DISCONNECTED, lastError, reconnects.get());
    }

    NbdUri uri() {
        return uri;
    }

    /** Stops reconnecting and closes the client in use. */
    @Override
    public void close() throws IOException {
        NbdClient current;
        Thread running;
        synchronized (this) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.CLOSED;
            current = client;
            running = reconnector;
        }
        if (running != null) {
            running.interrupt();
            try {
                running.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        current.close();
    }

    private void watch(NbdClient watched) {
        watched.broken().thenAccept(cause -> broke(watched, cause));
    }

    private void broke(NbdClient broken, IOException cause) {
        synchronized (this) {
            if (state != State.CONNECTED || client != broken) {
                return;
            }
            state = State.DISCONNECTED;
            lastError = cause.getMessage();
            reconnector = Thread.ofPlatform().daemon().name("pcache-nbd-reconnect").start(this::reconnect);
        }
        LOG.warn("nbd backing {} disconnected, reconnecting: {}", uri, cause.getMessage());
    }

    /** The reconnect thread: connects until a connection to the same export is made or the link is closed. */
    private void reconnect() {
        long backoff = BACKOFF_MIN_NANOS;
        int attempts = 0;
        while (!Thread.currentThread().isInterrupted()) {
            try {
                TimeUnit.NANOSECONDS.sleep(backoff);
            } catch (InterruptedException e) {
                return;
            }
            backoff = Math.min(backoff * 2, BACKOFF_MAX_NANOS);
            attempts++;
            NbdClient fresh;
            try {
                fresh = connector.connect();
            } catch (IOException | RuntimeException e) {
                LOG.debug("nbd backing {}: reconnect attempt {} failed: {}", uri, attempts, e.getMessage());
                continue;
            }
            String mismatch = mismatch(fresh);
            if (mismatch != null) {
                LOG.error("nbd backing {}: not reconnecting to a different export: {}", uri, mismatch);
                closeQuietly(fresh);
                synchronized (this) {
                    lastError = "the server came back with a different export: " + mismatch;
                }
                continue;
            }
            if (install(fresh)) {
                LOG.info("nbd backing {} reconnected after {} attempt(s)", uri, attempts);
            }
            return;
        }
    }

    /** Makes {@code fresh} the client in use; false (and {@code fresh} closed) if the link was closed meanwhile. */
    private boolean install(NbdClient fresh) {
        NbdClient old;
        synchronized (this) {
            if (state == State.CLOSED) {
                closeQuietly(fresh);
                return false;
            }
            old = client;
            client = fresh;
            state = State.CONNECTED;
            reconnector = null;
            reconnects.incrementAndGet();
        }
        closeQuietly(old);
        watch(fresh);
        return true;
    }

    private String mismatch(NbdClient fresh) {
        if (fresh.size() != size) {
            return "size " + fresh.size() + " bytes (expected " + size + ")";
        }
        if (fresh.minimumBlockSize() != minimumBlockSize) {
            return "minimum block size " + fresh.minimumBlockSize() + " (expected " + minimumBlockSize + ")";
        }
        if (writable && fresh.has(NbdProtocol.FLAG_READ_ONLY)) {
            return "read-only (it was writable)";
        }
        return null;
    }

    private void closeQuietly(NbdClient closed) {
        try {
            closed.close();
        } catch (IOException e) {
            LOG.debug("nbd backing {}: close: {}", uri, e.toString());
        }
    }
}
