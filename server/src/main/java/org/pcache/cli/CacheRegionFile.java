package org.pcache.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalLong;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.MappedPmemRegion;

/**
 * The file that holds the cache region. A missing (or empty) file is created sparse at the requested size, its
 * directory too, except where a missing path is a missing device ({@link DeviceDirectory}); an existing file keeps its
 * size, because a cache is never resized: asking for another size is refused rather than ignored. Sizes under
 * dm-pcache's 512 MiB minimum are refused before anything is created.
 */
final class CacheRegionFile {

    private CacheRegionFile() {
    }

    /**
     * The size the region on {@code file} will have, by the rules of the class comment; checks only, creates
     * nothing.
     */
    static long size(Path file, OptionalLong requested) throws CommandException {
        long size = existingOrRequestedSize(file, requested);
        if (size < CacheDeviceLayout.MIN_SIZE) {
            throw new CommandException("cache " + file + " would be " + ByteSize.format(size) + ", below dm-pcache's "
                    + "minimum of " + ByteSize.format(CacheDeviceLayout.MIN_SIZE));
        }
        return size;
    }

    /** Maps {@code file} with {@code size} (from {@link #size}), creating it and its directory when missing. */
    static MappedPmemRegion map(Path file, long size) throws CommandException {
        createDirectory(file);
        try {
            return MappedPmemRegion.open(file, size);
        } catch (IOException e) {
            throw CommandException.of("cannot map cache " + file, e);
        }
    }

    private static long existingOrRequestedSize(Path file, OptionalLong requested) throws CommandException {
        if (!Files.exists(file)) {
            DeviceDirectory.refuseMissingDevice(file, "cache");
            return requested.orElse(ServeSettings.DEFAULT_CACHE_SIZE);
        }
        if (!Files.isRegularFile(file)) {
            throw new CommandException("cache " + file + " is not a regular file");
        }
        long existing;
        try {
            existing = Files.size(file);
        } catch (IOException e) {
            throw CommandException.of("cannot read the size of cache " + file, e);
        }
        if (existing == 0) {
            return requested.orElse(ServeSettings.DEFAULT_CACHE_SIZE);
        }
        if (requested.isPresent() && requested.getAsLong() != existing) {
            throw new CommandException("cache " + file + " exists with " + ByteSize.format(existing) + " ("
                    + existing + " bytes) but --cache-size asks for " + ByteSize.format(requested.getAsLong())
                    + "; a cache is never resized (leave --cache-size out to use it as it is)");
        }
        return existing;
    }

    /** Creates the directory {@code file} goes in, when it is missing. */
    static void createDirectory(Path file) throws CommandException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent == null || Files.isDirectory(parent)) {
            return;
        }
        try {
            Files.createDirectories(parent);
        } catch (IOException e) {
            throw CommandException.of("cannot create directory " + file.getParent() + " for " + file, e);
        }
    }
}
