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
import java.util.ArrayList;
import java.util.List;
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
 * <p>With {@link Caching#DIRECT} the file is opened with O_DIRECT, for every read and write whose offset and length
 * are multiples of the file system's block size (the unit the JDK enforces); the others (a 512-byte sector of a
 * 4 KiB-block file system) go through a second, buffered descriptor of the same file, so {@link #alignment()} stays
 * 1 and the cache's 512-byte sectors work. Linux keeps the two coherent (an O_DIRECT write drops the cached pages it
 * covers, an O_DIRECT read first writes back dirty ones), and a flush (fdatasync, per file) covers both. Memory need
 * not be aligned: misaligned native memory is copied through an aligned bounce buffer (the JDK does the same for heap
 * memory), so a cache-region slice at any offset can be written back directly. A size that is not a multiple of the
 * block size is rounded down.
 *
 * <p>Discard and write-zeroes go to the kernel through {@link LinuxFile}, on a descriptor of their own. On a regular
 * file discard punches a hole ({@code fallocate(PUNCH_HOLE | KEEP_SIZE)}: the range reads back as zeroes and its
 * blocks are freed) and write-zeroes is {@code fallocate(ZERO_RANGE)}. On a block device discard is the
 * {@code BLKDISCARD} ioctl on the logical blocks wholly inside the range (a discard may leave any part alone) and
 * write-zeroes is {@code fallocate(ZERO_RANGE)} on a range aligned to the logical block size. When the file system or
 * device answers EOPNOTSUPP, the engine remembers it ({@link #supportsDiscard()}, {@link #supportsWriteZeroes()}
 * turn false): discard does nothing from then on, and write-zeroes writes zero blocks, as it also does for a range a
 * block device cannot zero because it is not block-aligned. Both are durable after the next flush, like a write.
 *
 * <p>The allocation map comes from {@code lseek(SEEK_DATA / SEEK_HOLE)} on the same descriptor: holes of a sparse
 * file are reported as holes.
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
    /** Most runs one {@link #allocation} call reports; the caller asks again for the rest. */
    private static final int MAX_EXTENTS = 1024;
    /** Largest zero buffer a write-zeroes that writes zero blocks allocates; a multiple of any block size in use. */
    private static final long ZERO_CHUNK = 1L << 20;

    /** Whether I/O goes through the page cache. */
    public enum Caching {
        /** Through the page cache: any offset, length and memory. */
        BUFFERED,
        /** O_DIRECT for block-aligned offsets and lengths; any other request goes through the page cache. */
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
    /** With O_DIRECT: a buffered descriptor for requests that are not block-aligned; otherwise {@link #channel}. */
    private final FileChannel unaligned;
    /** With O_DIRECT: the file system's block size; otherwise 1. */
    private final int directBlock;
    private final Options options;
    private final DeviceGeometry geometry;
    private final LinuxFile linuxFile;
    /** Null for a regular file; for a block device its logical block size, the unit of discard and write-zeroes. */
    private final Integer logicalBlockSize;
    private final ExecutorService ioPool;
    /** True until the store first answers a discard with EOPNOTSUPP. */
    private volatile boolean discardSupported = true;
    /** True until the store first answers a write-zeroes with EOPNOTSUPP. */
    private volatile boolean writeZeroesSupported = true;

    private FileEngine(Path path, FileChannel channel, FileChannel unaligned, int directBlock, Options options,
                       DeviceGeometry geometry, LinuxFile linuxFile, Integer logicalBlockSize) {
        this.path = path;
        this.channel = channel;
        this.unaligned = unaligned;
        this.directBlock = directBlock;
        this.options = options;
        this.geometry = geometry;
        this.linuxFile = linuxFile;
        this.logicalBlockSize = logicalBlockSize;
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
        FileChannel unaligned = channel;
        LinuxFile linuxFile = null;
        try {
            if (options.caching() == Caching.DIRECT) {
                unaligned = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            }
            linuxFile = LinuxFile.open(path);
            Integer logicalBlockSize = blockDevice ? linuxFile.logicalBlockSize() : null;
            long size = blockDevice ? SysfsBlockDevice.size(path) : channel.size();
            int alignment = options.caching() == Caching.DIRECT
                    ? Math.toIntExact(Files.getFileStore(path).getBlockSize())
                    : 1;
            long usable = size - size % alignment;
            if (usable != size) {
                LOG.warn("path={} size={} is not a multiple of the O_DIRECT block size {}; using size={}", path, size,
                        alignment, usable);
            }
            return new FileEngine(path, channel, unaligned, alignment, options, new DeviceGeometry(usable, 1),
                    linuxFile, logicalBlockSize);
        } catch (IOException | RuntimeException e) {
            try {
                channel.close();
                unaligned.close();
                if (linuxFile != null) {
                    linuxFile.close();
                }
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

    @Override
    public void discard(long offset, long length, IoCallback done) {
        submit("discard", offset, length, () -> discardRange(offset, length), done);
    }

    @Override
    public void writeZeroes(long offset, long length, IoCallback done) {
        submit("write-zeroes", offset, length, () -> zeroRange(offset, length), done);
    }

    /**
     * SEEK_DATA and SEEK_HOLE from {@code offset}, up to {@link #MAX_EXTENTS} runs, on a pool thread. A file system
     * without them (EINVAL, EOPNOTSUPP) and a block device report DATA; a hole cut by the file's end (it shrank) too.
     */
    @Override
    public void allocation(long offset, long length, AllocationCallback done) {
        List<BackingExtent> extents = new ArrayList<>();
        submit("allocation", offset, length, () -> extents.addAll(allocationMap(offset, length)),
                error -> done.completed(error == null ? extents : null, error));
    }

    private List<BackingExtent> allocationMap(long offset, long length) throws IOException {
        List<BackingExtent> extents = new ArrayList<>();
        long end = offset + length;
        long at = offset;
        while (at < end && extents.size() < MAX_EXTENTS) {
            long data;
            try {
                data = Math.min(end, linuxFile.seek(at, LinuxFile.SEEK_DATA));
            } catch (LinuxFile.ErrnoException e) {
                if (e.errno() == LinuxFile.ENXIO) {
                    data = end; // no data from here to the end of the file: the rest is a hole
                } else if (extents.isEmpty()) {
                    return List.of(new BackingExtent(length, BackingExtent.Kind.DATA)); // no SEEK_DATA here
                } else {
                    throw e;
                }
            }
            if (data > at) {
                extents.add(new BackingExtent(data - at, BackingExtent.Kind.HOLE));
                at = data;
                continue;
            }
            long hole = Math.min(end, linuxFile.seek(at, LinuxFile.SEEK_HOLE));
            extents.add(new BackingExtent(Math.max(hole, at + 1) - at, BackingExtent.Kind.DATA));
            at = Math.max(hole, at + 1);
        }
        return extents;
    }

    @Override
    public boolean supportsDiscard() {
        return discardSupported;
    }

    @Override
    public boolean supportsWriteZeroes() {
        return writeZeroesSupported;
    }

    /** Waits for the pool threads to finish and closes the file. Does not flush. */
    @Override
    public void close() throws IOException {
        ioPool.close();
        try (LinuxFile closing = linuxFile; FileChannel closingUnaligned = unaligned) {
            channel.close();
        }
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
        FileChannel through = channelFor(offset, dst.byteSize());
        if (!needsBounce(dst, through)) {
            readInto(through, offset, dst);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(dst.byteSize(), directBlock);
            readInto(through, offset, bounce);
            dst.copyFrom(bounce);
        }
    }

    private void writeFully(long offset, MemorySegment src) throws IOException {
        FileChannel through = channelFor(offset, src.byteSize());
        if (!needsBounce(src, through)) {
            writeFrom(through, offset, src);
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bounce = arena.allocate(src.byteSize(), directBlock);
            bounce.copyFrom(src);
            writeFrom(through, offset, bounce);
        }
    }

    /** The O_DIRECT descriptor for a block-aligned range, the buffered one for any other (and without O_DIRECT). */
    private FileChannel channelFor(long offset, long length) {
        return offset % directBlock == 0 && length % directBlock == 0 ? channel : unaligned;
    }

    /**
     * True when {@code memory} cannot go to the channel as it is: a heap segment whose array is not a visible
     * {@code byte[]} has no ByteBuffer view, and O_DIRECT needs native memory at an aligned address.
     */
    private boolean needsBounce(MemorySegment memory, FileChannel through) {
        if (!memory.isNative()) {
            return !(memory.heapBase().orElse(null) instanceof byte[]);
        }
        return through != unaligned && memory.address() % directBlock != 0;
    }

    private void readInto(FileChannel through, long offset, MemorySegment dst) throws IOException {
        long length = dst.byteSize();
        for (long done = 0; done < length; ) {
            long chunk = Math.min(MAX_CHUNK, length - done);
            ByteBuffer buffer = dst.asSlice(done, chunk).asByteBuffer();
            while (buffer.hasRemaining()) {
                long position = offset + done + buffer.position();
                if (through.read(buffer, position) < 0) {
                    throw new BackingIoException(BackingIoException.Reason.OUT_OF_RANGE, "read", offset, length,
                            "end of file at offset " + position + " (expected: device size " + geometry.size() + ")",
                            null);
                }
            }
            done += chunk;
        }
    }

    private void writeFrom(FileChannel through, long offset, MemorySegment src) throws IOException {
        long length = src.byteSize();
        for (long done = 0; done < length; ) {
            long chunk = Math.min(MAX_CHUNK, length - done);
            ByteBuffer buffer = src.asSlice(done, chunk).asByteBuffer();
            while (buffer.hasRemaining()) {
                through.write(buffer, offset + done + buffer.position());
            }
            done += chunk;
        }
    }

    private void discardRange(long offset, long length) throws IOException {
        if (!discardSupported || length == 0) {
            return;
        }
        try {
            if (logicalBlockSize == null) {
                linuxFile.fallocate(LinuxFile.FALLOC_FL_PUNCH_HOLE | LinuxFile.FALLOC_FL_KEEP_SIZE, offset, length);
            } else {
                long start = Math.ceilDiv(offset, logicalBlockSize) * logicalBlockSize;
                long end = Math.floorDiv(offset + length, logicalBlockSize) * logicalBlockSize;
                if (start < end) {
                    linuxFile.blockDiscard(start, end - start);
                }
            }
        } catch (LinuxFile.ErrnoException e) {
            if (e.errno() != LinuxFile.EOPNOTSUPP) {
                throw e;
            }
            discardSupported = false;
            LOG.info("path={} does not support discard ({}); discards do nothing from now on", path, e.getMessage());
        }
    }

    private void zeroRange(long offset, long length) throws IOException {
        if (length == 0) {
            return;
        }
        boolean aligned = logicalBlockSize == null || offset % logicalBlockSize == 0 && length % logicalBlockSize == 0;
        if (writeZeroesSupported && aligned) {
            try {
                linuxFile.fallocate(LinuxFile.FALLOC_FL_ZERO_RANGE, offset, length);
                return;
            } catch (LinuxFile.ErrnoException e) {
                if (e.errno() != LinuxFile.EOPNOTSUPP) {
                    throw e;
                }
                writeZeroesSupported = false;
                LOG.info("path={} does not support zeroing a range ({}); write-zeroes writes zero blocks from now on",
                        path, e.getMessage());
            }
        }
        writeZeroBlocks(offset, length);
    }

    /** Writes zeroes over the range from one aligned native buffer of at most {@link #ZERO_CHUNK} bytes. */
    private void writeZeroBlocks(long offset, long length) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment zeroes = arena.allocate(Math.min(length, ZERO_CHUNK), directBlock);
            for (long done = 0; done < length; ) {
                long chunk = Math.min(zeroes.byteSize(), length - done);
                writeFrom(channelFor(offset + done, chunk), offset + done, zeroes.asSlice(0, chunk));
                done += chunk;
            }
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
