package org.pcache.cli;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A lock on a cache file, so that one process at a time changes a cache: {@code serve} holds an exclusive lock while
 * it runs, {@code check}, {@code dump} and {@code recover} a shared one while they read. A second server on the same
 * cache, or a recover under a live server, would corrupt what the other writes; both are refused instead. The lock
 * goes with the process, so a server killed with -9 leaves none behind.
 *
 * <p>These are POSIX record locks, which a process loses when it closes any descriptor of the file: take the lock
 * after the region is mapped (mapping opens and closes the file), and open the file nowhere else while holding it.
 */
final class CacheFileLock implements AutoCloseable {

    private final FileChannel channel;
    private final FileLock lock;

    private CacheFileLock(FileChannel channel, FileLock lock) {
        this.channel = channel;
        this.lock = lock;
    }

    /** The lock a running server holds; refused while any other process holds a lock on {@code file}. */
    static CacheFileLock exclusive(Path file) throws CommandException {
        return take(file, false, "another pcache process is using it (a second server would corrupt it)",
                StandardOpenOption.READ, StandardOpenOption.WRITE);
    }

    /** The lock of a reader; refused while a server runs on {@code file}. */
    static CacheFileLock shared(Path file) throws CommandException {
        return take(file, true, "a running pcache serve is using it; stop the server first", StandardOpenOption.READ);
    }

    private static CacheFileLock take(Path file, boolean shared, String held, StandardOpenOption... modes)
            throws CommandException {
        FileChannel channel;
        try {
            channel = FileChannel.open(file, modes);
        } catch (IOException e) {
            throw CommandException.of("cannot open cache " + file, e);
        }
        try {
            FileLock lock = channel.tryLock(0, Long.MAX_VALUE, shared);
            if (lock == null) {
                throw new CommandException("cache " + file + " is in use: " + held);
            }
            return new CacheFileLock(channel, lock);
        } catch (IOException e) {
            closeQuietly(channel);
            throw CommandException.of("cannot lock cache " + file, e);
        } catch (CommandException e) {
            closeQuietly(channel);
            throw e;
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
            // Nothing was written through this channel; there is nothing to lose.
        }
    }
}
