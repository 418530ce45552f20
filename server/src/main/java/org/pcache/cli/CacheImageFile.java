package org.pcache.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.pcache.cache.CacheImage;
import org.pcache.pmem.BackingIdentityOnMedia;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CacheDeviceTooSmallException;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.MappedPmemRegion;

/**
 * A cache file opened for {@code check}, {@code dump} and {@code recover}: it must exist (nothing is created), it is
 * mapped read-only (nothing can be written to it), and it is held under a shared {@link CacheFileLock}, so no server
 * changes it meanwhile. The image is the same format dm-pcache writes, so an image of a kernel cache device opens
 * too.
 */
final class CacheImageFile implements AutoCloseable {

    private final Path file;
    private final MappedPmemRegion region;
    private final CacheFileLock lock;

    private CacheImageFile(Path file, MappedPmemRegion region, CacheFileLock lock) {
        this.file = file;
        this.region = region;
        this.lock = lock;
    }

    /** Maps and locks {@code file}; refuses a missing file, something that is not a file, or a cache in use. */
    static CacheImageFile open(Path file) throws CommandException {
        if (!Files.exists(file)) {
            throw new CommandException("cache " + file + " does not exist");
        }
        if (!Files.isRegularFile(file)) {
            throw new CommandException("cache " + file + " is not a regular file");
        }
        MappedPmemRegion region;
        try {
            region = MappedPmemRegion.openReadOnly(file);
        } catch (IOException e) {
            throw CommandException.of("cannot open cache " + file, e);
        }
        try {
            return new CacheImageFile(file, region, CacheFileLock.shared(file)); // after mapping: see CacheFileLock
        } catch (CommandException e) {
            region.close();
            throw e;
        }
    }

    /**
     * Validates the metadata ({@link CacheImage#inspect}); {@code backingSize} bounds the keys' ranges
     * ({@link Long#MAX_VALUE} when unknown).
     *
     * @throws CorruptMediaException if the file holds no valid cache: the message says what is wrong, where
     */
    CacheImage inspect(long backingSize) throws CorruptMediaException, CommandException {
        try {
            return CacheImage.inspect(region, backingSize);
        } catch (CacheDeviceTooSmallException e) {
            throw new CorruptMediaException("cache device", CorruptMediaException.NO_SEGMENT, 0, "size",
                    "at least " + ByteSize.format(CacheDeviceLayout.MIN_SIZE) + " (dm-pcache's minimum)",
                    ByteSize.format(e.size()) + " (" + e.size() + " bytes)");
        } catch (CorruptMediaException e) {
            throw e;
        } catch (IOException e) {
            throw CommandException.of("cannot read cache " + file, e);
        }
    }

    /** The backing device the cache records (pcache's extension record), for check and dump. */
    String backingIdentity() {
        BackingIdentityOnMedia.Contents recorded = BackingIdentityOnMedia.read(region);
        return switch (recorded.state()) {
            case ABSENT -> "none recorded";
            case DAMAGED -> "damaged record";
            case VALID -> BackingIdentity.parse(recorded.text()).map(BackingIdentity::toString)
                    .orElse("unreadable record");
        };
    }

    /** The one-line failure of a command that needs a valid image. */
    CommandException corrupt(CorruptMediaException e) {
        return CommandException.corrupt("cache " + file + ": " + e.getMessage(), e);
    }

    @Override
    public void close() {
        region.close();
        lock.close();
    }
}
