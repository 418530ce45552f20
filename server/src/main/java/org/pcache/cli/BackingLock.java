package org.pcache.cli;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * A host-wide lock on a backing device, so that two pcache servers on this host (each with its own cache file) never
 * cache the same device: each would overwrite the other's data on writeback. The lock is a file under
 * {@code /run/pcache} (the temporary directory when that cannot be created) named after a hash of the device's
 * identity without its size, and holds the device's name for whoever looks. It goes with the process, so a server
 * killed with -9 leaves none behind (the file stays, unlocked, and is reused).
 */
final class BackingLock implements AutoCloseable {

    private final FileChannel channel;
    private final FileLock lock;

    private BackingLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the lock of {@code identity}; refused while another process holds it. */
    static BackingLock take(BackingIdentity identity) throws CommandException {
        Path file = directory().resolve("backing-" + hash(identity) + ".lock");
        FileChannel channel;
        try {
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
        } catch (IOException e) {
            throw CommandException.of("cannot open the backing device's lock " + file, e);
        }
        try {
            FileLock lock = channel.tryLock();
            if (lock == null) {
                throw new CommandException("backing " + identity + " is already cached by another pcache on this "
                        + "host (it holds " + file + "); a second cache would overwrite its data on writeback");
            }
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((identity + "\n").getBytes(StandardCharsets.UTF_8)), 0);
            return new BackingLock(channel, lock);
        } catch (IOException e) {
            closeQuietly(channel);
            throw CommandException.of("cannot lock " + file, e);
        } catch (CommandException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    private static Path directory() {
        Path run = Path.of("/run/pcache");
        try {
            return Files.createDirectories(run);
        } catch (IOException e) {
            return Path.of(System.getProperty("java.io.tmpdir"));
        }
    }

    private static String hash(BackingIdentity identity) {
        String key = identity.kind() + "\n" + (identity.kind().equals(BackingIdentity.FILE) ? "" : identity.name())
                + "\n" + identity.id();
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(key.getBytes(StandardCharsets.UTF_8)), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    @Override
    public void close() {
        try {
            lock.release();
        } catch (IOException e) {
            // The channel close below releases it too.
        }
        closeQuietly(channel);
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            // Only the lock file's text was written; there is nothing to lose.
        }
    }
}
