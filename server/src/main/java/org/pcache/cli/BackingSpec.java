package org.pcache.cli;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.OptionalLong;
import org.pcache.backing.FileEngine;
import org.pcache.backing.IoEngine;
import org.pcache.nbd.NbdEngine;
import org.pcache.nbd.NbdExport;
import org.pcache.nbd.NbdProtocol;
import org.pcache.nbd.NbdUri;

/**
 * What {@code --backing} names: an NBD URI ({@code nbd://HOST[:PORT][/EXPORT]},
 * {@code nbd+unix:///EXPORT?socket=PATH}, or {@code nbds} for TLS) or a path to a regular file or block device. A missing file is created
 * sparse at the requested size (default 8 GiB), its directory too, except where a missing path is a missing device
 * ({@link DeviceDirectory}). An existing device keeps its size; a {@code --backing-size} that differs is refused.
 * {@link #openExisting} (for recover) never creates anything.
 */
final class BackingSpec {

    private BackingSpec() {
    }

    /** Whether {@code spec} is an NBD URI rather than a path. */
    static boolean isUri(String spec) {
        return spec.startsWith("nbd:") || spec.startsWith("nbd+") || spec.startsWith("nbds:")
                || spec.startsWith("nbds+");
    }

    /**
     * Opens the engine {@code spec} names, creating a missing file; see the class comment. An {@code nbds} URI without
     * {@code ?tls-certificates=DIR} uses {@code tlsCertificates}.
     */
    static IoEngine open(String spec, OptionalLong requested, Optional<Path> tlsCertificates,
                         FileEngine.Caching caching) throws CommandException {
        IoEngine engine = isUri(spec) ? connect(spec, tlsCertificates) : openFile(Path.of(spec), requested, caching);
        try {
            checkSize(spec, engine.size(), requested);
        } catch (CommandException e) {
            closeQuietly(engine, e);
            throw e;
        }
        return engine;
    }

    /** Opens the engine {@code spec} names, which must exist: a missing file is refused, not created. */
    static IoEngine openExisting(String spec) throws CommandException {
        if (!isUri(spec) && !Files.exists(Path.of(spec))) {
            throw new CommandException("backing " + spec + " does not exist");
        }
        return open(spec, OptionalLong.empty(), Optional.empty(), FileEngine.Caching.BUFFERED);
    }

    /**
     * Connects to the NBD backing {@code uri} (over TLS for {@code nbds}, with {@code tlsCertificates} when the URI
     * names none), refusing a read-only export: writeback could never write to it.
     */
    private static IoEngine connect(String uri, Optional<Path> tlsCertificates) throws CommandException {
        NbdUri parsed;
        try {
            parsed = NbdUri.parse(uri);
        } catch (IllegalArgumentException e) {
            throw new CommandException("--backing " + e.getMessage(), e);
        }
        if (tlsCertificates.isPresent()) {
            parsed = parsed.withDefaultTlsCertificates(tlsCertificates.get());
        }
        if (parsed.tls() && parsed.tlsCertificates() == null) {
            throw new CommandException("--backing " + uri + ": TLS needs client credentials (ca-cert.pem): add "
                    + "?tls-certificates=DIR to the URI or give --backing-tls-certificates DIR");
        }
        try {
            NbdEngine engine = NbdEngine.open(parsed);
            if (engine.readOnly()) {
                CommandException refused = new CommandException("backing " + uri + " is a read-only NBD export "
                        + "(the server advertises NBD_FLAG_READ_ONLY); pcache writes dirty data back to its backing, "
                        + "so it needs a writable export");
                closeQuietly(engine, refused);
                throw refused;
            }
            return engine;
        } catch (IllegalArgumentException e) {
            throw new CommandException("--backing " + e.getMessage(), e);
        } catch (IOException e) {
            throw CommandException.of("cannot connect to backing " + uri, e);
        }
    }

    private static IoEngine openFile(Path path, OptionalLong requested, FileEngine.Caching caching)
            throws CommandException {
        if (!Files.exists(path)) {
            create(path, requested.orElse(ServeSettings.DEFAULT_BACKING_SIZE));
        }
        try {
            return FileEngine.open(path, FileEngine.Options.DEFAULT.withCaching(caching));
        } catch (IOException e) {
            throw CommandException.of("cannot open backing " + path
                    + (caching == FileEngine.Caching.DIRECT ? " with O_DIRECT (--backing-direct)" : ""), e);
        }
    }

    private static void create(Path path, long size) throws CommandException {
        DeviceDirectory.refuseMissingDevice(path, "backing");
        if (size <= 0) {
            throw new CommandException("backing " + path + " would be empty (--backing-size " + size + ")");
        }
        CacheRegionFile.createDirectory(path);
        try (RandomAccessFile file = new RandomAccessFile(path.toFile(), "rw")) {
            file.setLength(size); // ftruncate: sparse
        } catch (IOException e) {
            throw CommandException.of("cannot create backing " + path, e);
        }
    }

    private static void checkSize(String spec, long size, OptionalLong requested) throws CommandException {
        if (requested.isPresent() && requested.getAsLong() != size) {
            throw new CommandException("backing " + spec + " has " + ByteSize.format(size) + " (" + size
                    + " bytes) but --backing-size asks for " + ByteSize.format(requested.getAsLong())
                    + "; leave --backing-size out to use it as it is");
        }
        if (size == 0 || size % NbdExport.BLOCK_SIZE != 0) {
            throw new CommandException("backing " + spec + " has " + size + " bytes (expected a positive multiple of "
                    + NbdExport.BLOCK_SIZE + ")");
        }
    }

    private static void closeQuietly(IoEngine engine, Exception failure) {
        try {
            engine.close();
        } catch (IOException e) {
            failure.addSuppressed(e);
        }
    }
}
