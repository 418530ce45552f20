package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.sun.nio.file.ExtendedOpenOption;

/**
 * An engine on a regular file or a block device: positional {@link FileChannel} reads and writes (pread/pwrite)
 * run on a bounded pool of named platform threads, so many operations are in flight at once and none runs on the
 * caller's thread. Flush is {@code FileChannel.force(false)} (fdatasync: the data and the metadata needed to read it
 * back, such as the file size; timestamps are not needed and are left to the file system).
 *
 * <p>With {@link Caching#DIRECT} the file is opened with O_DIRECT. {@link #alignment()} is then the file system's
 * block size (the unit the JDK enforces); offsets and lengths that break it fail with
 * {@link BackingIoException.Reason#MISALIGNED}. Memory need not be aligned: misaligned native memory is copied
 * through an aligned bounce buffer (the JDK does the same for heap memory), so a cache-region slice at any offset
 * can be written back directly. A size that is not a multiple of the block size is rounded down.
 *
 * <p>Errors: a range past {@link #size()} fails with OUT_OF_RANGE before any I/O; a read that meets the end of
 * the file (it shrank after open) fails with OUT_OF_RANGE instead of waiting for bytes that will never come;
 * anything the file system reports fails with IO_ERROR and keeps the cause.
 *
 * <p>Threading: every method may be called from any thread; callbacks run on the pool threads
 * ({@code <prefix>-<n>}). Pool threads are never interrupted: an interrupt during positional I/O would close the
 * channel for every user, which is also why no I/O runs on the caller's (possibly interruptible) thread.
 */
public final class FileEngine implements IoEngine {

    private static final Logger LOG = LoggerFactory.getLogger(FileEngine.class);

    /** Largest piece given to one FileChannel call: a ByteBuffer holds less than 2 GiB. A multiple of any block
     *  size in use, so pieces of an aligned request stay aligned. */
    private static final long MAX_CHUNK = 1L << 30;

    /** Whether I/O goes through the page cache. */
    public enum Caching {
        /** Through the page cache: any offset, length and memory. */
        BUFFERED,
        /** O_DIRECT: offsets and lengths aligned to the file system block size. */
        DIRECT
    }

    /** Settings of a file engine. */
    public record Options(Caching caching, int ioThreads, String threadNamePrefix) {

        /** Buffered I/O on 16 threads named {@code pcache-backing-io-<n>}. */
        public static final Options DEFAULT = new Options(Caching.BUFFERED, 16, "pcache-backing-io");

        public Options {
            if (caching == null || ioThreads < 1 || threadNamePrefix == null || threadNamePrefix.isBlank()) {
                throw new IllegalArgumentException("file engine options caching=" + caching + " ioThreads=" + ioThreads
                        + " threadNamePrefix=" + threadNamePrefix + " (expected: caching set, ioThreads >= 1, a name)");
            }
        }

        /** These options with {@code newCaching}. */
        public Options withCaching(Caching newCaching) {
            return new Options(newCaching, ioThreads, threadNamePrefix);
        }

        /** These options with {@code newIoThreads} I/O threads. */
        public Options withIoThreads(int newIoThreads) {
            return new Options(caching, newIoThreads, threadNamePrefix);
        }
    }

    private final Path path;
    private final FileChannel channel;
    private final Options options;
    private final DeviceGeometry geometry;
    private final ExecutorService ioPool;

    private FileEngine(Path path, FileChannel channel, Options options, DeviceGeometry geometry) {
        this.path = path;
        this.channel = channel;
        this.options = options;
        this.geometry = geometry;
        this.ioPool = new ThreadPoolExecutor(options.ioThreads(), options.ioThreads(), 0, TimeUnit.MILLISECONDS,
                new LinkedBlockingQueue<>(),
                Thread.ofPlatform().name(options.threadNamePrefix() + "-", 0).daemon(true).factory());
    }

    /**
     * Opens an existing regular file or block device for reading and writing and learns its size (for a block
     * device from sysfs, since the file size of a device node is 0).
     *
     * @throws IOException if the path is missing, is neither a regular file nor a block device, or cannot be opened
     *                     (for example O_DIRECT on a file system without it)
     */
    public static FileEngine open(Path path, Options options) throws IOException {
        boolean blockDevice = SysfsBlockDevice.isBlockDevice(path);
        if (!blockDevice && !SysfsBlockDevice.isRegularFile(path)) {
            throw new IOException(path + ": not a regular file or block device");
        }
        Set<OpenOption> openOptions = options.caching() == Caching.DIRECT
                ? Set.of(StandardOpenOption.READ, StandardOpenOption.WRITE, ExtendedOpenOption.DIRECT)
                : Set.of(StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileChannel channel = FileChannel.open(path, openOptions);
        try {
            long size = blockDevice ? SysfsBlockDevice.size(path) : channel.size();
            int alignment = options.caching() == Caching.DIRECT
                    ? Math.toIntExact(Files.getFileStore(path).getBlockSize())
                    : 1;
            long usable = size - size % alignment;
            if (usable != size) {
                LOG.warn("path={} size={} is not a multiple of the O_DIRECT block size {}; using size={}", path, size,
                        alignment, usable);
            }
            return new FileEngine(path, channel, options, new DeviceGeometry(usable, alignment));
        } catch (IOException | RuntimeException e) {
            try {
                channel.close();
            } catch (IOException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    @Override
    public long size() {
        return geometry.size();
    }

    @Override
    public int alignment() {
        return geometry.alignment();
    }

    @Override
    public void read(long offset, MemorySegment dst, IoCallback done) {
        submit("read", offset, dst.byteSize(), () -> readFully(offset, dst), done);
    }

    @Override
    public void write(long offset, MemorySegment src, IoCallback done) {
        submit("write", offset, src.byteSize(), () -> writeFully(offset, src), done);
    }

    @Override
    public void flush(IoCallback done) {
        submit("flush", 0, geometry.size(), () -> channel.force(false), done);
    }

    /** Waits for the pool threads to finish and closes the file. Does not flush. */
    @Override
    public void close() throws IOException {
        ioPool.close();
        channel.close();
    }

    @Override
    public String toString() {
        return "file path=" + path + " caching=" + options.caching() + " ioThreads=" + options.ioThreads();
    }

    /** Checks the range, then runs {@code transfer} on a pool thread and reports its outcome to {@code done}. */
    private void submit(String operation, long offset, long length, Transfer transfer, IoCallback done) {
        BackingIoException invalid = geometry.check(operation, offset, length);
        if (invalid != null) {
            done.completed(invalid);
            return;
        }
        ioPool.execute(() -> {
            IOException error = null;
            try {
                transfer.run();
            } catch (IOException e) {
                error = asBackingError(operation, offset, length, e);
            } catch (RuntimeException e) {
                // Top of the I/O task, for example memory of a confined or closed arena: the operation fails and
                // the pool thread lives on, instead of the callback being lost.
                error = new BackingIoException(BackingIoException.Reason.IO_ERROR, operation, offset, length,
                        path + ": " + e, e);
            }
            done.completed(error);
        });
    }

    private void readFully(long offset, MemorySegment dst) throws IOException {
        if (!needsBounce(dst)) {
            readInto(offset, dst);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(dst.byteSize(), geometry.alignment());
            readInto(offset, bounce);
            dst.copyFrom(bounce);
        }
    }

    private void writeFully(long offset, MemorySegment src) throws IOException {
        if (!needsBounce(src)) {
            writeFrom(offset, src);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(src.byteSize(), geometry.alignment());
            bounce.copyFrom(src);
            writeFrom(offset, bounce);
        }
    }

    /**
     * True when {@code memory} cannot go to the channel as it is: a heap segment whose array is not a visible
     * {@code byte[]} has no ByteBuffer view, and O_DIRECT needs native memory at an aligned address.
     */
    private boolean needsBounce(MemorySegment memory) {
        if (!memory.isNative()) {
            return !(memory.heapBase().orElse(null) instanceof byte[]);
        }
        return options.caching() == Caching.DIRECT && memory.address() % geometry.alignment() != 0;
    }

    private void readInto(long offset, MemorySegment dst) throws IOException {
        long length = dst.byteSize();
        for (long done = 0; done < length; ) {
            long chunk = Math.min(MAX_CHUNK, length - done);
            ByteBuffer buffer = dst.asSlice(done, chunk).asByteBuffer();
            while (buffer.hasRemaining()) {
                long position = offset + done + buffer.position();
                if (channel.read(buffer, position) < 0) {
                    throw new BackingIoException(BackingIoException.Reason.OUT_OF_RANGE, "read", offset, length,
                            "end of file at offset " + position + " (expected: device size " + geometry.size() + ")",
                            null);
                }
            }
            done += chunk;
        }
    }

    private void writeFrom(long offset, MemorySegment src) throws IOException {
        long length = src.byteSize();
        for (long done = 0; done < length; ) {
            long chunk = Math.min(MAX_CHUNK, length - done);
            ByteBuffer buffer = src.asSlice(done, chunk).asByteBuffer();
            while (buffer.hasRemaining()) {
                channel.write(buffer, offset + done + buffer.position());
            }
            done += chunk;
        }
    }

    /** One blocking file operation, run on a pool thread. */
    @FunctionalInterface
    private interface Transfer {
        void run() throws IOException;
    }

    private BackingIoException asBackingError(String operation, long offset, long length, IOException error) {
        if (error instanceof BackingIoException typed) {
            return typed;
        }
        return new BackingIoException(BackingIoException.Reason.IO_ERROR, operation, offset, length,
                path + ": " + error, error);
    }
}
