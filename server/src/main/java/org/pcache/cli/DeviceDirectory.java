package org.pcache.cli;

import java.io.IOException;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Tells a missing device node from a file pcache may create. A path whose nearest existing directory is {@code /dev}
 * itself or lies on a devtmpfs file system (where the kernel keeps device nodes: {@code /dev/mapper},
 * {@code /dev/disk/...}) names a device; when it is missing, creating a regular file there would only hide the
 * mistake (and fill a RAM file system meant for nodes). Anywhere else a file is created, including on the tmpfs
 * mounted under {@code /dev/shm}.
 */
final class DeviceDirectory {

    private static final Path DEV = Path.of("/dev");
    private static final String DEVTMPFS = "devtmpfs";

    private DeviceDirectory() {
    }

    /** Throws when {@code path} (which does not exist) names a missing device; {@code what} is "cache" or "backing". */
    static void refuseMissingDevice(Path path, String what) throws CommandException {
        Path directory = nearestExistingDirectory(path.toAbsolutePath().normalize());
        if (directory != null && isDeviceDirectory(directory)) {
            throw new CommandException(what + " device " + path + " does not exist (" + directory
                    + " holds device nodes; a file is not created there)");
        }
    }

    private static Path nearestExistingDirectory(Path path) {
        Path directory = path.getParent();
        while (directory != null && !Files.isDirectory(directory)) {
            directory = directory.getParent();
        }
        return directory;
    }

    private static boolean isDeviceDirectory(Path directory) {
        if (directory.equals(DEV)) {
            return true;
        }
        try {
            FileStore store = Files.getFileStore(directory);
            return store.type().equals(DEVTMPFS);
        } catch (IOException e) {
            return false; // creating the file will fail with its own message
        }
    }
}
