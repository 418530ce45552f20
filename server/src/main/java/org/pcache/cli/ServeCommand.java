package org.pcache.cli;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.pcache.admin.AdminServer;
import org.pcache.admin.AdminToken;
import org.pcache.cache.CacheMode;
import org.pcache.cache.CacheOptions;
import org.pcache.nbd.DiscardPolicy;
import org.pcache.cache.Pcache;
import org.pcache.nbd.NbdProtocol;
import org.pcache.nbd.TlsCredentials;
import org.pcache.nbd.TlsMode;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code pcache serve}: opens the cache in front of the backing device and serves it over NBD until SIGTERM or
 * SIGINT. Prints exactly one line on stdout once clients can connect; everything else goes to the log (stderr).
 *
 * <p>Stopping: a shutdown hook stops the target in order (see {@link PcacheTarget#stop}) and then ends the process
 * with status 0, because a requested stop is a clean exit (the JVM alone would report 143 after SIGTERM). The stop is
 * bounded: if it has not finished after {@link #STOP_LIMIT}, the process halts with status 1. That is safe, since the
 * cache is crash-consistent by design: the next start replays what a kill -9 would have left. The hook is installed
 * once the target runs; a signal during start ends the JVM the default way, which is equally safe.
 */
@Command(name = "serve",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = "Serve a cached block device over NBD: the cache region (--cache) in front of the backing "
                + "device (--backing). Missing files are created sparse; a blank cache is formatted, an existing one "
                + "is replayed (--format overwrites it). Runs until SIGTERM or SIGINT. The admin endpoint (--admin) "
                + "answers pcache status, message and drain.",
        footer = {"", "SIZE is a byte count with an optional K, M, G or T suffix (powers of 1024), e.g. 512M or 8G.",
                "Exit status: 0 after SIGTERM/SIGINT, 1 when pcache cannot start, 2 for a wrong command line."})
final class ServeCommand implements Callable<Integer> {

    /** How long the stop sequence may take before the process halts. */
    static final Duration STOP_LIMIT = Duration.ofSeconds(60);

    private static final Logger LOG = LoggerFactory.getLogger(ServeCommand.class);

    @Spec
    private CommandSpec spec;

    @Option(names = "--cache", paramLabel = "FILE", description = "Cache region file (default: ${DEFAULT-VALUE}).")
    private Path cacheFile = Path.of("./pcache-data/cache.img");

    @Option(names = "--backing", paramLabel = "FILE|URI",
            description = "Backing file or block device, or an NBD URI: nbd://HOST[:PORT][/EXPORT] or "
                    + "nbd+unix:///EXPORT?socket=PATH, nbds:// and nbds+unix:// for TLS (with "
                    + "?tls-certificates=DIR or --backing-tls-certificates) (default: ${DEFAULT-VALUE}).")
    private String backing = "./pcache-data/backing.img";

    @Option(names = "--cache-size", paramLabel = "SIZE", converter = ByteSize.class,
            description = "Size of a new cache file (default 1G, at least 512M). An existing cache keeps its size.")
    private Long cacheSize;

    @Option(names = "--backing-size", paramLabel = "SIZE", converter = ByteSize.class,
            description = "Size of a new backing file (default 8G). An existing device keeps its size.")
    private Long backingSize;

    @Option(names = "--backing-direct",
            description = "Open a file or block device backing with O_DIRECT: reads and writeback bypass the page "
                    + "cache, so writeback's flushes cost what the device costs. Offsets must be aligned to the file "
                    + "system's block size; unaligned memory is copied through an aligned buffer.")
    private boolean backingDirect;

    @Option(names = "--read-ahead", paramLabel = "SIZE", converter = ByteSize.class,
            description = "Read this much ahead into the cache when misses form a sequential stream (default 0: "
                    + "off; at most 16M, a multiple of 512). Random reads never read ahead.")
    private Long readAhead;

    @Option(names = "--data-crc", arity = "1", paramLabel = "true|false", converter = StrictBoolean.class,
            description = "Keep a CRC32C of cached data (default false for a new cache; an existing cache keeps "
                    + "its setting and refuses the other one).")
    private Boolean dataCrc;

    @Option(names = "--gc-percent", paramLabel = "N",
            description = "Segment usage (0-" + CacheOptions.GC_PERCENT_MAX + ") at which GC reclaims written-back "
                    + "data (default " + CacheOptions.GC_PERCENT_DEFAULT + " for a new cache; persisted when given).")
    private Integer gcPercent;

    @Option(names = "--mode", paramLabel = "MODE", converter = CacheModeOption.class,
            description = "Cache mode: writeback, writethrough, writearound, writeonly or passthrough (default "
                    + "writeback for a new cache; an existing cache keeps its mode unless this is given, and then "
                    + "persists it). Switch it online with pcache message mode MODE.")
    private CacheMode mode;

    @Option(names = "--sequential-cutoff", paramLabel = "SIZE", converter = ByteSize.class,
            description = "Once a connection's run of contiguous requests passes SIZE, its writes and read misses "
                    + "bypass the cache, bcache style (bcache uses 4M; default 0: off).")
    private long sequentialCutoff = CacheOptions.SEQUENTIAL_CUTOFF_DEFAULT;

    @Option(names = "--writeback-depth", paramLabel = "N",
            description = "Backing writes writeback keeps in flight at most, 1-" + CacheOptions.WRITEBACK_DEPTH_MAX
                    + " (default " + CacheOptions.WRITEBACK_DEPTH_DEFAULT + ").")
    private int writebackDepth = CacheOptions.WRITEBACK_DEPTH_DEFAULT;

    @Option(names = "--writeback-low", paramLabel = "PERCENT",
            description = "Percent of the cache's data area dirty below which writeback idles, unless a drain or a "
                    + "write waiting for space asks (default " + CacheOptions.WRITEBACK_LOW_DEFAULT + "; change it "
                    + "at run time with pcache message writeback_low N).")
    private int writebackLow = CacheOptions.WRITEBACK_LOW_DEFAULT;

    @Option(names = "--writeback-high", paramLabel = "PERCENT",
            description = "Percent dirty from which writeback keeps its full depth in flight; between the two "
                    + "watermarks it keeps a quarter of it (default " + CacheOptions.WRITEBACK_HIGH_DEFAULT
                    + "; pcache message writeback_high N).")
    private int writebackHigh = CacheOptions.WRITEBACK_HIGH_DEFAULT;

    @Option(names = "--format",
            description = "Format the cache region as a new, empty cache whatever it holds: a valid cache, one whose "
                    + "cache_info copies are both damaged, one with the other data CRC setting. Its data, writes not "
                    + "yet written back included, is lost. Without it only a blank region is formatted.")
    private boolean format;

    @Option(names = "--force-backing",
            description = "Open the cache even though it records another backing device than --backing, and record "
                    + "this one. Writeback then writes the cache's dirty data onto this device: only for a device "
                    + "that was moved or renamed, never for a different one.")
    private boolean forceBacking;

    @Option(names = "--listen", paramLabel = "HOST:PORT", converter = ListenAddress.class,
            description = "TCP address to serve NBD on (default 127.0.0.1:" + NbdProtocol.DEFAULT_PORT
                    + " unless --socket is given; port 0 picks a free port).")
    private InetSocketAddress listen;

    @Option(names = "--socket", paramLabel = "PATH", description = "Unix socket to serve NBD on.")
    private Path socket;

    @Option(names = "--export", paramLabel = "NAME",
            description = "NBD export name (default: the empty name; clients that ask for no name also reach it).")
    private String exportName = "";

    @Option(names = "--read-only",
            description = "Serve the export read-only: clients see NBD_FLAG_READ_ONLY and every write, trim or "
                    + "zeroing gets EPERM; reads still fill the cache, and dirty data already in it is still written "
                    + "back.")
    private boolean readOnly;
    @Option(names = "--discard", paramLabel = "passdown|ignore", converter = DiscardOption.class,
            description = "What a client's TRIM does: passdown (default) drops the range from the cache, which then "
                    + "reads as zeroes, and writeback discards it on the backing device (punches a hole in a file, "
                    + "sends NBD_CMD_TRIM to an NBD server that takes it); ignore accepts the TRIM and changes "
                    + "nothing, the data stays readable.")
    private DiscardPolicy discard = DiscardPolicy.PASSDOWN;

    @Option(names = "--tls", paramLabel = "off|on|require", converter = TlsModeOption.class,
            description = "TLS for NBD clients (NBD_OPT_STARTTLS, X.509): off, on (clients choose) or require (no "
                    + "option but STARTTLS is answered before TLS). Default off; on and require need "
                    + "--tls-certificates.")
    private TlsMode tls = TlsMode.OFF;

    @Option(names = "--tls-certificates", paramLabel = "DIR",
            description = "Server credentials directory: " + TlsCredentials.SERVER_CERT + ", "
                    + TlsCredentials.SERVER_KEY + " (PEM, PKCS#8 or PKCS#1, unencrypted) and, with "
                    + "--tls-verify-peer, " + TlsCredentials.CA_CERT + ".")
    private Path tlsCertificates;

    @Option(names = "--tls-verify-peer",
            description = "Require every TLS client to present a certificate signed by " + TlsCredentials.CA_CERT
                    + ".")
    private boolean tlsVerifyPeer;

    @Option(names = "--backing-tls-certificates", paramLabel = "DIR",
            description = "Client credentials for an nbds:// backing whose URI has no ?tls-certificates=DIR: "
                    + TlsCredentials.CA_CERT + " (the CA of the backing server) and optionally "
                    + TlsCredentials.CLIENT_CERT + " with " + TlsCredentials.CLIENT_KEY + ".")
    private Path backingTlsCertificates;

    @Option(names = "--admin", paramLabel = "HOST:PORT", converter = ListenAddress.class,
            defaultValue = "127.0.0.1:" + AdminServer.DEFAULT_PORT,
            description = "Address of the admin endpoint: HTTP /status, /metrics, /message, /drain "
                    + "(default: ${DEFAULT-VALUE}; port 0 picks a free port). Loopback only, unless a token is "
                    + "configured.")
    private InetSocketAddress admin;

    @Option(names = "--admin-token-file", paramLabel = "FILE",
            description = "File whose first line is a token (16 or more visible ASCII characters) the admin endpoint "
                    + "then requires on every request as 'Authorization: Bearer TOKEN'; it may then listen on any "
                    + "address (default: the environment variable " + AdminTokenSource.ENVIRONMENT + ", else none).")
    private Path adminTokenFile;

    @Override
    public Integer call() throws CommandException {
        ServeSettings settings = settings(AdminTokenSource.resolve(adminTokenFile));
        PcacheTarget target;
        try {
            target = PcacheTarget.start(settings);
        } catch (RuntimeException e) {
            // A bug, not a user error: still one line, with the stack trace under --debug.
            throw new CommandException("could not start: " + e, e);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(Thread.ofPlatform().name("pcache-shutdown")
                .unstarted(() -> stop(target, stopped)));
        PrintStream out = System.out;
        out.println("pcache: serving " + String.join(" ", target.uris()) + " (" + target.describe() + ")");
        out.flush();
        awaitUninterruptibly(stopped);
        return 0;
    }

    /** The settings the options name; a value picocli cannot check alone is a usage error (exit status 2). */
    private ServeSettings settings(Optional<AdminToken> adminToken) {
        if (gcPercent != null && (gcPercent < 0 || gcPercent > CacheOptions.GC_PERCENT_MAX)) {
            throw new ParameterException(spec.commandLine(), "--gc-percent " + gcPercent
                    + " is out of range (expected 0.." + CacheOptions.GC_PERCENT_MAX + ")");
        }
        if (writebackDepth < 1 || writebackDepth > CacheOptions.WRITEBACK_DEPTH_MAX) {
            throw new ParameterException(spec.commandLine(), "--writeback-depth " + writebackDepth
                    + " is out of range (expected 1.." + CacheOptions.WRITEBACK_DEPTH_MAX + ")");
        }
        try {
            CacheOptions.checkWatermarks(writebackLow, writebackHigh);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--writeback-low " + writebackLow
                    + " --writeback-high " + writebackHigh + ": expected 0 <= low <= high <= 100");
        }
        if (!admin.getAddress().isLoopbackAddress() && adminToken.isEmpty()) {
            throw new ParameterException(spec.commandLine(), "--admin " + ListenAddress.format(admin)
                    + ": without a token the admin endpoint listens on loopback only (e.g. 127.0.0.1:"
                    + AdminServer.DEFAULT_PORT + " or [::1]:" + AdminServer.DEFAULT_PORT + "); give --admin-token-file "
                    + "FILE or " + AdminTokenSource.ENVIRONMENT + " to listen on another address");
        }
        if (exportName.indexOf('\0') >= 0
                || exportName.getBytes(StandardCharsets.UTF_8).length > NbdProtocol.MAX_STRING_LENGTH) {
            throw new ParameterException(spec.commandLine(), "--export: expected a name of at most "
                    + NbdProtocol.MAX_STRING_LENGTH + " bytes without NUL");
        }
        if (tls == TlsMode.OFF && (tlsCertificates != null || tlsVerifyPeer)) {
            throw new ParameterException(spec.commandLine(), (tlsCertificates != null ? "--tls-certificates"
                    : "--tls-verify-peer") + " needs --tls on or --tls require");
        }
        if (tls != TlsMode.OFF && tlsCertificates == null) {
            throw new ParameterException(spec.commandLine(), "--tls " + tls.name().toLowerCase()
                    + " needs --tls-certificates DIR (with " + TlsCredentials.SERVER_CERT + " and "
                    + TlsCredentials.SERVER_KEY + ")");
        }
        if (readAhead != null && (readAhead < 0 || readAhead > CacheOptions.READ_AHEAD_MAX
                || readAhead % Pcache.SECTOR_SIZE != 0)) {
            throw new ParameterException(spec.commandLine(), "--read-ahead " + readAhead + " is out of range "
                    + "(expected: a multiple of " + Pcache.SECTOR_SIZE + " from 0 to " + CacheOptions.READ_AHEAD_MAX
                    + ")");
        }
        if (backingDirect && BackingSpec.isUri(backing)) {
            throw new ParameterException(spec.commandLine(), "--backing-direct applies to a file or block device "
                    + "backing, not to " + backing);
        }
        List<SocketAddress> addresses = new ArrayList<>();
        if (listen != null || socket == null) {
            addresses.add(listen != null ? listen
                    : new InetSocketAddress(InetAddress.getLoopbackAddress(), NbdProtocol.DEFAULT_PORT));
        }
        if (socket != null) {
            addresses.add(UnixDomainSocketAddress.of(socket));
        }
        return new ServeSettings(cacheFile, optional(cacheSize), backing, optional(backingSize),
                Optional.ofNullable(dataCrc), gcPercent == null ? OptionalInt.empty() : OptionalInt.of(gcPercent),
                format, forceBacking, addresses, exportName, readOnly, admin, adminToken, tls,
                Optional.ofNullable(tlsCertificates), tlsVerifyPeer, Optional.ofNullable(backingTlsCertificates),
                discard, writebackDepth, writebackLow, writebackHigh, backingDirect, readAhead == null ? 0 : readAhead,
                Optional.ofNullable(mode), sequentialCutoff);
    }

    /** Runs on the shutdown hook: the orderly stop, bounded by {@link #STOP_LIMIT}; then exit status 0. */
    private static void stop(PcacheTarget target, CountDownLatch stopped) {
        Thread.ofPlatform().name("pcache-shutdown-watchdog").daemon().start(() -> {
            if (!awaitQuietly(stopped, STOP_LIMIT)) {
                LOG.error("stop did not finish within {} s; halting (the next start replays the cache)",
                        STOP_LIMIT.toSeconds());
                Runtime.getRuntime().halt(1);
            }
        });
        try {
            target.stop();
        } catch (RuntimeException e) {
            LOG.error("stop failed; halting (the next start replays the cache)", e);
            Runtime.getRuntime().halt(1);
        }
        stopped.countDown();
        System.out.flush();
        System.err.flush();
        // A stop the user asked for is a clean exit; without halt the JVM would exit 143 after SIGTERM.
        Runtime.getRuntime().halt(0);
    }

    private static OptionalLong optional(Long value) {
        return value == null ? OptionalLong.empty() : OptionalLong.of(value);
    }

    /** Whether {@code latch} opened within {@code limit}; an interrupt counts as "not yet". */
    private static boolean awaitQuietly(CountDownLatch latch, Duration limit) {
        try {
            return latch.await(limit.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static void awaitUninterruptibly(CountDownLatch latch) {
        boolean interrupted = false;
        while (true) {
            try {
                latch.await();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
