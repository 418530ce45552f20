package org.pcache.nbd;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one {@link NbdExport} over NBD (fixed newstyle, structured replies, base:allocation) on TCP and
 * unix sockets. Each accepted socket becomes a connection over a {@link SocketTransport}, with a reader thread
 * and a reply-writer thread; many requests are in flight per connection and replies may come back out of
 * order. Every command handed to the export is timed into the server's {@link #statistics()}. With {@link Tls} on
 * or required, a client's NBD_OPT_STARTTLS moves its connection onto a {@link TlsTransport}.
 *
 * <pre>{@code
 * NbdServer server = new NbdServer(export, NbdServer.Options.defaults());
 * server.start();                      // binds 127.0.0.1:10809, accepts clients
 * server.boundAddresses();             // the real ports when port 0 was asked for
 * server.stop();                       // stop accepting, answer what was read, ESHUTDOWN to the rest, close
 * }</pre>
 *
 * <p>Lifecycle: {@link #start} binds every address or none (a failed bind unwinds the others), starts one
 * acceptor thread per address ({@code pcache-nbd-accept-N}) and the handshake timer
 * ({@code pcache-nbd-timer}); {@link #stop} closes the listening sockets, joins the acceptors, stops every
 * connection gracefully (NBD_ESHUTDOWN to requests read after the stop began) and joins it, stops the timer and removes unix socket files. Nothing a client sends
 * reaches another connection or the server itself.
 *
 * <p>Threading: start and stop are called by the owner; the connection map is concurrent.
 */
public final class NbdServer implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

    /**
     * Server settings.
     *
     * @param addresses           where to listen: {@link InetSocketAddress} (TCP; port 0 picks a free port) or
     *                            {@link UnixDomainSocketAddress}; at least one
     * @param maxConnections      connections served at once; more are closed on arrival
     * @param maxInFlightRequests requests read but not yet answered, per connection
     * @param maxInFlightBytes    bytes of request buffers, per connection (at least one maximal request)
     * @param handshakeTimeout    a connection that has not finished negotiating by then is closed
     * @param drainTimeout        how long a stopping connection goes on reading (answering NBD_ESHUTDOWN) at most,
     *                            and how long ending a connection waits for its requests in flight
     */
    public record Options(List<SocketAddress> addresses, int maxConnections, int maxInFlightRequests,
                          long maxInFlightBytes, Duration handshakeTimeout, Duration drainTimeout) {

        /** 127.0.0.1 on the IANA NBD port. */
        public static final InetSocketAddress DEFAULT_ADDRESS =
                new InetSocketAddress(InetAddress.getLoopbackAddress(), NbdProtocol.DEFAULT_PORT);

        public Options {
            addresses = List.copyOf(addresses);
            if (addresses.isEmpty()) {
                throw new IllegalArgumentException("no address to listen on");
            }
            for (SocketAddress address : addresses) {
                if (!(address instanceof InetSocketAddress) && !(address instanceof UnixDomainSocketAddress)) {
                    throw new IllegalArgumentException("cannot listen on " + address + " (expected TCP or unix)");
                }
            }
            if (maxConnections < 1 || maxInFlightRequests < 1) {
                throw new IllegalArgumentException("maxConnections " + maxConnections + " and maxInFlightRequests "
                        + maxInFlightRequests + " must be >= 1");
            }
            if (maxInFlightBytes < NbdProtocol.MAX_REQUEST_LENGTH) {
                throw new IllegalArgumentException("maxInFlightBytes " + maxInFlightBytes + " (expected >= "
                        + NbdProtocol.MAX_REQUEST_LENGTH + ", one maximal request)");
            }
            if (handshakeTimeout.isNegative() || handshakeTimeout.isZero() || drainTimeout.isNegative()) {
                throw new IllegalArgumentException("timeouts must be positive: handshake " + handshakeTimeout
                        + ", drain " + drainTimeout);
            }
        }

        /** 127.0.0.1:10809, 64 connections, 64 requests and 64 MiB in flight each, 30 s timeouts. */
        public static Options defaults() {
            return new Options(List.of(DEFAULT_ADDRESS), 64, 64, 64L << 20, Duration.ofSeconds(30),
                    Duration.ofSeconds(30));
        }

        public Options withAddresses(SocketAddress... newAddresses) {
            return new Options(List.of(newAddresses), maxConnections, maxInFlightRequests, maxInFlightBytes,
                    handshakeTimeout, drainTimeout);
        }

        public Options withLimits(int newMaxConnections, int newMaxInFlightRequests, long newMaxInFlightBytes) {
            return new Options(addresses, newMaxConnections, newMaxInFlightRequests, newMaxInFlightBytes,
                    handshakeTimeout, drainTimeout);
        }
    }

    /** How often a stopping server checks whether a connection went quiet (two quiet checks in a row end it). */
    static final Duration QUIET_CHECK_INTERVAL = Duration.ofMillis(50);

    /**
     * Whether and how the server offers TLS.
     *
     * @param mode        off, on (clients choose) or require
     * @param credentials the server's certificate and key (and CA for client verification); null only when off
     */
    public record Tls(TlsMode mode, TlsCredentials credentials) {

        public static final Tls OFF = new Tls(TlsMode.OFF, null);

        public Tls {
            if ((mode == TlsMode.OFF) != (credentials == null)) {
                throw new IllegalArgumentException("TLS " + mode + " " + (credentials == null
                        ? "needs credentials" : "takes no credentials"));
            }
        }
    }

    private final NbdExport export;
    private final BlockSizeAdapter blockSizes;
    private final Options options;
    private final Tls tls;
    private final RequestStatistics statistics = new RequestStatistics();
    private final AtomicInteger connectionIds = new AtomicInteger();
    private final Map<Integer, Running> connections = new ConcurrentHashMap<>();
    // Written by start() and stop() only.
    private final List<ServerSocketChannel> listeners = new ArrayList<>();
    private final List<SocketAddress> bound = new ArrayList<>();
    private final List<Thread> acceptors = new ArrayList<>();
    private ScheduledExecutorService timer;
    private volatile boolean stopping;

    /** A connection and the thread reading it. */
    private record Running(NbdConnection connection, Thread reader) {
    }

    public NbdServer(NbdExport export, Options options) {
        this(export, options, Tls.OFF);
    }

    public NbdServer(NbdExport export, Options options, Tls tls) {
        long size = export.size();
        if (size < 0 || size % NbdExport.BLOCK_SIZE != 0) {
            throw new IllegalArgumentException("export size " + size + " is not a multiple of "
                    + NbdExport.BLOCK_SIZE);
        }
        checkString("export name", export.name());
        checkString("export description", export.description());
        this.export = export;
        this.blockSizes = new BlockSizeAdapter(export);
        this.options = options;
        this.tls = tls;
    }

    /** Binds every address and starts accepting. */
    public synchronized void start() throws IOException {
        if (timer != null) {
            throw new IllegalStateException("NBD server already started");
        }
        try {
            for (SocketAddress address : options.addresses()) {
                bind(address);
            }
        } catch (IOException | RuntimeException e) {
            closeListeners();
            throw e;
        }
        timer = new ScheduledThreadPoolExecutor(1, task -> new Thread(task, "pcache-nbd-timer"));
        for (int i = 0; i < listeners.size(); i++) {
            ServerSocketChannel listener = listeners.get(i);
            acceptors.add(Thread.ofPlatform().name("pcache-nbd-accept-" + i).start(() -> accept(listener)));
            LOG.info("nbd server listening export={} uri={} tls={}", export.name(),
                    new NbdUri(bound.get(i), export.name(), tls.mode() == TlsMode.REQUIRE, null), tls.mode());
        }
    }

    /** The latency of the commands every connection handed the export, since the server was made. */
    public RequestStatistics statistics() {
        return statistics;
    }

    /** The addresses actually bound, in the order of {@link Options#addresses()}; TCP ports are resolved. */
    public synchronized List<SocketAddress> boundAddresses() {
        return List.copyOf(bound);
    }

    /**
     * Stops gracefully: stops accepting; every connection answers what it has read, answers new requests with
     * NBD_ESHUTDOWN so that clients disconnect, and stops reading once it is quiet (nothing in flight, no request
     * for {@link #QUIET_CHECK_INTERVAL}) or at the drain timeout; then closes. Joins every thread. Idempotent.
     */
    public synchronized void stop() {
        if (timer == null) {
            return;
        }
        stopping = true;
        closeListeners();
        joinAll(acceptors);
        acceptors.clear();
        List<Thread> readers = new ArrayList<>();
        for (Running running : connections.values()) {
            running.connection().stop();
            readers.add(running.reader());
        }
        LOG.info("nbd server stopping export={}: answering {} connections' requests in flight, ESHUTDOWN to new ones",
                export.name(), readers.size());
        long interval = QUIET_CHECK_INTERVAL.toMillis();
        timer.scheduleAtFixedRate(() -> connections.values().forEach(running -> running.connection()
                .endInputIfQuiet()), interval, interval, TimeUnit.MILLISECONDS);
        timer.schedule(() -> connections.values().forEach(running -> running.connection().endInput()),
                options.drainTimeout().toMillis(), TimeUnit.MILLISECONDS);
        joinReaders(readers);
        timer.shutdownNow();
        try {
            timer.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        timer = null;
        for (SocketAddress address : bound) {
            if (address instanceof UnixDomainSocketAddress unix) {
                try {
                    Files.deleteIfExists(unix.getPath());
                } catch (IOException e) {
                    LOG.warn("nbd server could not remove socket {}: {}", unix.getPath(), e.toString());
                }
            }
        }
        bound.clear();
        LOG.info("nbd server stopped export={}", export.name());
    }

    @Override
    public void close() {
        stop();
    }

    private void bind(SocketAddress address) throws IOException {
        ServerSocketChannel listener;
        if (address instanceof UnixDomainSocketAddress unix) {
            if (Files.exists(unix.getPath())) {
                throw new IOException("socket path " + unix.getPath()
                        + " already exists; remove it if no server is using it");
            }
            listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        } else {
            listener = ServerSocketChannel.open();
            listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
        }
        try {
            listener.bind(address);
        } catch (IOException e) {
            listener.close();
            throw new IOException("cannot listen on " + address + ": " + e.getMessage(), e);
        }
        listeners.add(listener);
        bound.add(listener.getLocalAddress());
    }

    private void accept(ServerSocketChannel listener) {
        while (true) {
            SocketChannel channel;
            try {
                channel = listener.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (!listener.isOpen()) {
                    return;
                }
                LOG.warn("nbd server accept failed: {}", e.toString());
                continue;
            }
            admit(channel);
        }
    }

    private void admit(SocketChannel channel) {
        NbdTransport transport;
        try {
            if (stopping || connections.size() >= options.maxConnections()) {
                LOG.warn("nbd server refusing connection from {}: {}", channel.getRemoteAddress(),
                        stopping ? "stopping" : "already " + options.maxConnections() + " connections");
                channel.close();
                return;
            }
            transport = SocketTransport.over(channel);
        } catch (IOException e) {
            LOG.debug("nbd server dropping a connection at accept: {}", e.toString());
            return;
        }
        int id = connectionIds.incrementAndGet();
        NbdConnection connection = new NbdConnection(id, transport, export, blockSizes, options, tls, statistics,
                () -> connections.remove(id));
        // Platform, not virtual: a blocked read then wakes in the kernel instead of through the JDK's poller
        // and the carrier pool, which doubled queue-depth-1 throughput on the 2-CPU build VM (docs/nbd.md).
        Thread reader = Thread.ofPlatform().name("pcache-nbd-conn-" + id).unstarted(connection);
        connections.put(id, new Running(connection, reader));
        timer.schedule(connection::handshakeTimedOut, options.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
        reader.start();
        LOG.debug("nbd conn={} accepted", id);
    }

    private void closeListeners() {
        for (ServerSocketChannel listener : listeners) {
            try {
                listener.close();
            } catch (IOException e) {
                LOG.debug("nbd server closing listener: {}", e.toString());
            }
        }
        listeners.clear();
    }

    /**
     * Joins the connection readers, each bounded by twice the drain timeout (reading ends at the first, the
     * requests in flight then have the second) and a margin; a reader still blocked after that (an export that never
     * completes) is interrupted, which ends its connection.
     */
    private void joinReaders(List<Thread> readers) {
        Duration bound = options.drainTimeout().multipliedBy(2).plusSeconds(5);
        try {
            for (Thread reader : readers) {
                if (!reader.join(bound)) {
                    LOG.warn("nbd server: {} did not finish within {}, interrupting it", reader.getName(), bound);
                    reader.interrupt();
                    reader.join();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void joinAll(List<Thread> threads) {
        for (Thread thread : threads) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static void checkString(String what, String value) {
        int length = value.getBytes(StandardCharsets.UTF_8).length;
        if (length > NbdProtocol.MAX_STRING_LENGTH || value.indexOf('\0') >= 0) {
            throw new IllegalArgumentException(what + " of " + length + " bytes or with NUL (expected <= "
                    + NbdProtocol.MAX_STRING_LENGTH + " bytes of UTF-8 without NUL)");
        }
    }
}
