package org.pcache.cli;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.net.StandardProtocolFamily;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Optional;
import org.pcache.admin.AdminServer;
import org.pcache.admin.NbdMetrics;
import org.pcache.admin.PcacheMetrics;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.FileEngine;
import org.pcache.backing.IoEngine;
import org.pcache.cache.BackingBlockSizeException;
import org.pcache.cache.CacheClosedException;
import org.pcache.cache.CacheFailedException;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.nbd.NbdServer;
import org.pcache.nbd.TlsCredentials;
import org.pcache.nbd.TlsMode;
import org.pcache.nbd.NbdUri;
import org.pcache.nbd.PcacheExport;
import org.pcache.pmem.BackingIdentityOnMedia;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CacheInfoLostException;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.DataCrcMismatchException;
import org.pcache.pmem.MappedPmemRegion;
import org.pcache.pmem.SuperblockOnMedia;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One running pcache: the cache region, the backing device, the cache on them, the NBD server that exports it and
 * the admin endpoint that reports on it. This is dm-pcache's target: its constructor opens both devices and the
 * cache, its destructor undoes that; the admin endpoint is its status and message.
 *
 * <p>Lifecycle: {@link #start} checks that the listening addresses (NBD and admin) are free, so a busy port fails
 * before the cache is touched, then opens backing device, region, cache lock, backing lock ({@link BackingLock}), the
 * backing identity check ({@link BackingIdentity}, before the cache opens and starts writeback), cache, export,
 * server and admin endpoint in that order, each step putting how to undo it on {@code opened}; {@link #stop} undoes them from the
 * top, so {@link #open} is the one place that orders the parts, both ways, and a failure at any step undoes the steps
 * before it and leaves one {@link CommandException}. Stopping: the admin endpoint stops, the server stops accepting
 * and answers the requests in flight, the export frees its buffers, the cache closes its ksets (dirty data stays in
 * the region; nothing is written back) and its backing device stops with it, the locks are released and the region
 * unmapped. The backing device is the one part that does not wait for its own turn: it opens first, so a bad one
 * fails before the cache file is created, yet it stops right after the cache, since a request still in flight may
 * point into the region and another process may take the cache once the lock goes.
 *
 * <p>Threading: start and stop are synchronized; stop may come from a shutdown hook while start still runs, and then
 * waits for it.
 */
final class PcacheTarget {

    private static final Logger LOG = LoggerFactory.getLogger(PcacheTarget.class);
    /** File type bits of a unix mode, and the type of a socket (stat.h). */
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final ServeSettings settings;
    /** The NBD latencies and the cache's meters, scraped by the admin endpoint. */
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    /** How to undo each step {@link #open} took, the latest on top; guarded by this. */
    private final Deque<Runnable> opened = new ArrayDeque<>();
    // Set by open(); guarded by this.
    private BackingDevice backing;
    private MappedPmemRegion region;
    private NbdServer server;
    private AdminServer admin;

    private PcacheTarget(ServeSettings settings) {
        this.settings = settings;
    }

    /** Opens everything {@code settings} names and starts serving; on failure nothing stays open. */
    static PcacheTarget start(ServeSettings settings) throws CommandException {
        PcacheTarget target = new PcacheTarget(settings);
        target.open();
        return target;
    }

    private synchronized void open() throws CommandException {
        try {
            checkAddressesFree(settings.addresses());
            probe(settings.admin());
            NbdServer.Tls tls = serverTls();
            long cacheSize = CacheRegionFile.size(settings.cacheFile(), settings.cacheSize());
            IoEngine engine = BackingSpec.open(settings.backing(), settings.backingSize(),
                    settings.backingTlsCertificates(), settings.backingDirect()
                            ? FileEngine.Caching.DIRECT : FileEngine.Caching.BUFFERED);
            backing = BackingDevice.start(engine);
            opened.push(backing::stop);
            region = CacheRegionFile.map(settings.cacheFile(), cacheSize);
            opened.push(region::close);
            CacheFileLock lock = CacheFileLock.exclusive(settings.cacheFile()); // after mapping: see CacheFileLock
            opened.push(lock::close);
            BackingIdentity identity = BackingIdentity.of(settings.backing(), backing.size());
            BackingLock backingLock = BackingLock.take(identity);
            opened.push(backingLock::close);
            checkBackingIdentity(identity);
            Pcache cache = openCache();
            if (!BackingIdentityOnMedia.read(region).equals(new BackingIdentityOnMedia.Contents(
                    BackingIdentityOnMedia.State.VALID, identity.text()))) {
                BackingIdentityOnMedia.write(region, identity.text());
            }
            opened.push(() -> {
                cache.close();
                backing.stop(); // before the lock goes and the region is unmapped: see the class comment
            });
            long openedNanos = System.nanoTime();
            PcacheExport export = new PcacheExport(cache, settings.exportName(), "pcache: cache "
                    + settings.cacheFile() + ", backing " + settings.backing(), settings.readOnly(),
                    settings.discard());
            opened.push(export::close);
            server = new NbdServer(export, NbdServer.Options.defaults()
                    .withAddresses(settings.addresses().toArray(SocketAddress[]::new)), tls);
            opened.push(server::stop);
            startServer();
            new NbdMetrics(server.statistics()).bindTo(registry);
            new PcacheMetrics(cache, openedNanos).bindTo(registry);
            admin = new AdminServer(settings.admin(), settings.adminToken(), cache, registry, openedNanos);
            opened.push(admin::stop);
            startAdmin();
        } catch (CommandException | RuntimeException e) {
            stop();
            throw e;
        }
    }

    /** The URIs clients reach the export at, one per listening address, ports resolved. */
    synchronized List<String> uris() {
        List<String> uris = new ArrayList<>();
        for (SocketAddress address : server.boundAddresses()) {
            // nbds:// when TLS is required: the URI a client must use. With --tls on both work.
            uris.add(new NbdUri(address, settings.exportName(), settings.tls() == TlsMode.REQUIRE, null).toString());
        }
        return uris;
    }

    /** "cache FILE SIZE, backing SPEC SIZE, admin HOST:PORT", for the ready line. */
    synchronized String describe() {
        return "cache " + settings.cacheFile() + " " + ByteSize.format(region.size()) + ", backing "
                + settings.backing() + " " + ByteSize.format(backing.size()) + (settings.readOnly() ? ", read-only" : "")
                + ", admin "
                + ListenAddress.format(admin.boundAddress());
    }

    /** Stops serving and closes everything: undoes what {@link #open} did, latest first. Idempotent. */
    synchronized void stop() {
        long started = System.nanoTime();
        boolean serving = server != null;
        if (serving) {
            LOG.info("pcache stopping");
        }
        while (!opened.isEmpty()) {
            opened.pop().run();
        }
        if (serving) {
            server = null;
            LOG.info("pcache stopped in {} ms", (System.nanoTime() - started) / 1_000_000);
        }
    }

    /**
     * Refuses a cache that records another backing device than {@code current}, before the cache is opened (opening
     * starts writeback, which would write its dirty data onto the wrong device). A blank region, {@code --format}
     * and {@code --force-backing} skip the check; a cache without a record (made by the kernel or an older pcache)
     * passes and gets one.
     */
    private void checkBackingIdentity(BackingIdentity current) throws CommandException {
        BackingIdentityOnMedia.Contents recorded = BackingIdentityOnMedia.read(region);
        if (settings.format() || settings.forceBacking() || recorded.state() == BackingIdentityOnMedia.State.ABSENT
                || region.getLongAcquire(CacheDeviceLayout.SUPERBLOCK_OFFSET + SuperblockOnMedia.MAGIC_OFFSET) == 0) {
            return;
        }
        Optional<BackingIdentity> previous = recorded.state() == BackingIdentityOnMedia.State.VALID
                ? BackingIdentity.parse(recorded.text()) : Optional.empty();
        if (previous.isEmpty()) {
            throw new CommandException("cache " + settings.cacheFile() + " has a damaged backing identity record, so "
                    + "it cannot tell which device it caches; if it is " + current
                    + ", start with --force-backing");
        }
        if (!previous.get().sameDevice(current)) {
            throw new CommandException("cache " + settings.cacheFile() + " caches " + previous.get() + ", not "
                    + current + "; its dirty data would overwrite that device. Use the cache's own backing, or "
                    + "--force-backing if it is the same device under another name");
        }
    }

    /**
     * Opens the cache with the requested data_crc. Without {@code --data-crc} an existing cache keeps its own
     * setting: the mismatch names it, and opening again with it is safe because a refused open wrote nothing.
     */
    private Pcache openCache() throws CommandException {
        CacheOptions options = CacheOptions.defaults().withDataCrc(settings.dataCrc().orElse(false))
                .withFormat(settings.format()).withWritebackDepth(settings.writebackDepth())
                .withWritebackWatermarks(settings.writebackLow(), settings.writebackHigh())
                .withReadAhead(settings.readAhead()).withSequentialCutoff(settings.sequentialCutoff());
        if (settings.mode().isPresent()) {
            options = options.withCacheMode(settings.mode().get());
        }
        if (settings.gcPercent().isPresent()) {
            options = options.withGcPercent(settings.gcPercent().getAsInt());
        }
        Pcache opened;
        try {
            opened = openCache(options);
        } catch (DataCrcMismatchException e) {
            if (settings.dataCrc().isPresent()) {
                throw new CommandException("cache " + settings.cacheFile() + " was created with data_crc="
                        + e.existing() + "; --data-crc " + e.requested() + " is refused, as dm-pcache refuses it"
                        + " (leave --data-crc out to keep the cache's setting)", e);
            }
            opened = openExisting(options.withDataCrc(e.existing()));
        }
        if (settings.gcPercent().isPresent() && opened.status().gcPercent() != settings.gcPercent().getAsInt()) {
            try {
                opened.setGcPercent(settings.gcPercent().getAsInt());
            } catch (CacheClosedException | CacheFailedException e) {
                throw CommandException.of("cannot set gc_percent of cache " + settings.cacheFile(), e);
            }
        }
        if (settings.mode().isPresent() && opened.mode() != settings.mode().get()) {
            try {
                opened.setMode(settings.mode().get());
            } catch (CacheClosedException | CacheFailedException e) {
                throw CommandException.of("cannot set the mode of cache " + settings.cacheFile(), e);
            }
        }
        return opened;
    }

    /** The server's TLS setting, its credentials read now so that a bad file stops the start early. */
    private NbdServer.Tls serverTls() throws CommandException {
        if (settings.tls() == TlsMode.OFF) {
            return NbdServer.Tls.OFF;
        }
        Path directory = settings.tlsCertificates().orElseThrow();
        try {
            return new NbdServer.Tls(settings.tls(), TlsCredentials.server(directory, settings.tlsVerifyPeer()));
        } catch (IOException e) {
            throw CommandException.of("cannot read the TLS credentials in " + directory, e);
        }
    }

    private Pcache openExisting(CacheOptions options) throws CommandException {
        try {
            return openCache(options);
        } catch (DataCrcMismatchException e) {
            throw new CommandException("cache " + settings.cacheFile() + " changed while opening: " + e.getMessage(),
                    e);
        }
    }

    private Pcache openCache(CacheOptions options) throws CommandException, DataCrcMismatchException {
        try {
            return Pcache.open(region, backing, options);
        } catch (DataCrcMismatchException e) {
            throw e;
        } catch (CacheInfoLostException e) {
            throw new CommandException("cache " + settings.cacheFile() + " is refused: " + e.getMessage()
                    + "; start with --format to do that", e);
        } catch (CorruptMediaException e) {
            throw new CommandException("cache " + settings.cacheFile() + " is corrupt: " + e.getMessage(), e);
        } catch (BackingBlockSizeException e) {
            throw new CommandException("backing " + settings.backing() + " cannot be cached: " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            // A valid image with settings this version does not implement, e.g. a cache mode other than writeback.
            throw new CommandException("cache " + settings.cacheFile() + " cannot be used: " + e.getMessage(), e);
        } catch (IOException e) {
            throw CommandException.of("cannot open cache " + settings.cacheFile(), e);
        }
    }

    private void startServer() throws CommandException {
        try {
            server.start();
        } catch (IOException e) {
            throw CommandException.of("cannot serve NBD", e);
        }
        for (SocketAddress address : settings.addresses()) {
            if (address instanceof InetSocketAddress inet && !inet.getAddress().isLoopbackAddress()
                    && settings.tls() != TlsMode.REQUIRE) {
                // NBD without TLS has no authentication and no encryption: whoever reaches the port owns the disk.
                LOG.warn("NBD on {} is reachable from other hosts, without TLS required: anyone who can connect can "
                        + "read{} the export, and plain traffic is not encrypted; listen on a loopback address or a "
                        + "unix socket, or use --tls require, unless the network is trusted", ListenAddress.format(inet),
                        settings.readOnly() ? "" : " and write");
            }
        }
    }

    private void startAdmin() throws CommandException {
        try {
            admin.start();
        } catch (IOException e) {
            throw CommandException.of("cannot listen on " + ListenAddress.format(settings.admin())
                    + " (admin endpoint)", e);
        }
    }

    /**
     * Removes the socket a killed server left behind, so that a restart after kill -9 needs no manual step: a path
     * that is a unix socket nobody accepts on is stale. A live socket, or anything that is not a socket, is refused.
     */
    private static void removeStaleSocket(Path path) throws CommandException {
        int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (IOException | UnsupportedOperationException e) {
            throw new CommandException("cannot listen on unix socket " + path + ": the path exists", e);
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new CommandException("cannot listen on unix socket " + path
                    + ": the path exists and is not a socket");
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.connect(UnixDomainSocketAddress.of(path));
            throw new CommandException("cannot listen on unix socket " + path + ": another server is listening on it");
        } catch (IOException refused) {
            try {
                Files.delete(path);
            } catch (IOException e) {
                throw CommandException.of("cannot remove the stale unix socket " + path, e);
            }
            LOG.warn("removed stale unix socket path={} (no server listens on it)", path);
        }
    }

    /**
     * Fails fast, before the cache is opened, when an address is taken: binds each TCP address once and lets go,
     * and checks that a unix socket's path is free and its directory exists. The server binds again for real.
     */
    private static void checkAddressesFree(List<SocketAddress> addresses) throws CommandException {
        for (SocketAddress address : addresses) {
            switch (address) {
                case InetSocketAddress tcp -> probe(tcp);
                case UnixDomainSocketAddress unix -> checkSocketPath(unix.getPath());
                default -> throw new IllegalArgumentException("cannot listen on " + address);
            }
        }
    }

    private static void probe(InetSocketAddress address) throws CommandException {
        try (ServerSocketChannel probe = ServerSocketChannel.open()) {
            probe.bind(address);
        } catch (IOException e) {
            throw CommandException.of("cannot listen on " + ListenAddress.format(address), e);
        }
    }

    private static void checkSocketPath(Path path) throws CommandException {
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            removeStaleSocket(path);
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) {
            throw new CommandException("cannot listen on unix socket " + path + ": directory " + parent
                    + " does not exist");
        }
    }
}
