package org.pcache.nbd;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.pcache.backing.BackingConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link NbdEngine}'s connections to its server: the clients in use while they work, and new ones made when one
 * breaks. A server that advertises NBD_FLAG_CAN_MULTI_CONN gets {@link #MULTI_CONN} connections, used in turn
 * (request by request), because a server that runs a bounded number of requests per connection (nbdkit: 16 threads)
 * then runs more at once; its promise that a flush on one connection covers writes completed on every connection is
 * what keeps {@code flush} correct. Any other server gets one.
 *
 * <p>When a client breaks (the server closed the connection or went away, it answered NBD_ESHUTDOWN because it is
 * stopping, a protocol error, a request timeout) the
 * link is {@link State#DISCONNECTED} and a reconnect thread ({@code pcache-nbd-reconnect}) connects again with a
 * growing back-off, 100 ms doubling up to 5 s, forever. A new connection is taken only if the export is the one the
 * engine opened: same size, same minimum block size, still writable if it was; otherwise it is closed and the link
 * keeps trying (and says why in {@link #connection()}). One broken connection of several takes all of them down and
 * they are made again together, so the link is either fully connected or disconnected.
 *
 * <p>Ordering: requests in flight when the connection broke fail to their callers (writeback writes the same data
 * again, which is idempotent); nothing is resent here. A request that failed may still have reached the server.
 *
 * <p>Threading: {@link #client()} from any thread, without a lock (state and clients are volatile; install writes
 * the clients before the state, so a reader that sees CONNECTED sees the clients that go with it); the state moves
 * under {@code this}.
 */
final class NbdLink implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdLink.class);

    private static final long BACKOFF_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(100);
    private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(5);
    /** Connections to a server that advertises NBD_FLAG_CAN_MULTI_CONN. */
    static final int MULTI_CONN = 4;

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
    /** Written under this, read without it. */
    private volatile State state = State.CONNECTED;
    /** Written under this, read without it; never empty; the broken ones while DISCONNECTED, until they are closed. */
    private volatile List<NbdClient> clients;
    /** Which client the next request goes to. */
    private final AtomicInteger turn = new AtomicInteger();
    /** Why the link was last disconnected, or why a new connection was refused; guarded by this. */
    private String lastError;
    /** Guarded by this. */
    private Thread reconnector;

    /**
     * A link on {@code first}, which it owns from now on, and the further connections a multi-conn server gets (if
     * one of those fails, everything is closed and the failure thrown).
     */
    NbdLink(NbdClient first, Connector connector) throws IOException {
        this.connector = connector;
        this.uri = first.uri();
        this.size = first.size();
        this.minimumBlockSize = first.minimumBlockSize();
        this.writable = !first.has(NbdProtocol.FLAG_READ_ONLY);
        this.clients = withFurtherConnections(first);
        clients.forEach(this::watch);
    }

    /** A client to send on, each in turn, or null while disconnected (then {@link #connection()} says why). */
    NbdClient client() {
        if (state != State.CONNECTED) {
            return null;
        }
        List<NbdClient> current = clients;
        return current.get(Math.floorMod(turn.getAndIncrement(), current.size()));
    }

    /** A client in use now or last: for what does not change across reconnects. */
    NbdClient any() {
        return clients.getFirst();
    }

    /** Connections open to the server while connected. */
    int connections() {
        return clients.size();
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
        List<NbdClient> current;
        Thread running;
        synchronized (this) {
            if (state == State.CLOSED) {
                return;
            }
            state = State.CLOSED;
            current = clients;
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
        current.forEach(this::closeQuietly);
    }

    private void watch(NbdClient watched) {
        watched.broken().thenAccept(cause -> broke(watched, cause));
    }

    private void broke(NbdClient broken, IOException cause) {
        synchronized (this) {
            if (state != State.CONNECTED || !clients.contains(broken)) {
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
        List<NbdClient> old;
        synchronized (this) {
            old = clients;
        }
        old.forEach(this::closeQuietly); // the healthy ones of several too: they are made again together
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
            List<NbdClient> all;
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
            try {
                all = withFurtherConnections(fresh);
            } catch (IOException e) {
                LOG.debug("nbd backing {}: reconnect attempt {} failed: {}", uri, attempts, e.getMessage());
                continue;
            }
            if (install(all)) {
                LOG.info("nbd backing {} reconnected after {} attempt(s)", uri, attempts);
            }
            return;
        }
    }

    /** Makes {@code fresh} the clients in use; false (and {@code fresh} closed) if the link was closed meanwhile. */
    private boolean install(List<NbdClient> fresh) {
        synchronized (this) {
            if (state == State.CLOSED) {
                fresh.forEach(this::closeQuietly);
                return false;
            }
            clients = fresh;
            state = State.CONNECTED;
            reconnector = null;
            reconnects.incrementAndGet();
        }
        fresh.forEach(this::watch);
        return true;
    }

    /**
     * {@code first} and, when it advertises NBD_FLAG_CAN_MULTI_CONN, {@link #MULTI_CONN} - 1 more connections; on a
     * failure every one is closed, {@code first} too.
     */
    private List<NbdClient> withFurtherConnections(NbdClient first) throws IOException {
        List<NbdClient> all = new ArrayList<>(List.of(first));
        try {
            while (first.has(NbdProtocol.FLAG_CAN_MULTI_CONN) && all.size() < MULTI_CONN) {
                all.add(connector.connect());
            }
        } catch (IOException | RuntimeException e) {
            all.forEach(this::closeQuietly);
            throw e;
        }
        return List.copyOf(all);
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
