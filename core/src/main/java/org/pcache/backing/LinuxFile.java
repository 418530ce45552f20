package org.pcache.backing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;

/**
 * The Linux calls {@link FileEngine} needs that {@code FileChannel} does not offer: {@code fallocate(2)} (punch a
 * hole, zero a range), {@code lseek(2)} with SEEK_DATA and SEEK_HOLE (the allocation map) and the block device ioctls {@code BLKDISCARD} and {@code BLKSSZGET}, on a descriptor of their
 * own opened on the same file, through FFM downcalls into libc with errno captured at the call. A failed call throws {@link ErrnoException}, so the engine
 * can tell "the file system cannot do this" (EOPNOTSUPP) from a real error.
 *
 * <p>Threading: every method may be called from any thread until {@link #close}, which must come last.
 */
final class LinuxFile implements AutoCloseable {

    /** fallocate: keep the file size (linux/falloc.h). */
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    /** fallocate: deallocate the range; must come with KEEP_SIZE. */
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    /** fallocate: make the range read as zeroes, preferably without writing them. */
    static final int FALLOC_FL_ZERO_RANGE = 0x10;
    /** lseek: the next offset at or after the given one that holds data. */
    static final int SEEK_DATA = 3;
    /** lseek: the next offset at or after the given one that starts a hole (the end of the file counts as one). */
    static final int SEEK_HOLE = 4;
    /** errno: lseek found no data (or hole) at or after the offset, or the offset is past the end. */
    static final int ENXIO = 6;
    /** errno: the file system or device does not support the operation (ENOTSUP is the same number on Linux). */
    static final int EOPNOTSUPP = 95;

    /** ioctl BLKDISCARD, {@code _IO(0x12, 119)}: discard the byte range {@code uint64_t[2] {offset, length}}. */
    private static final long BLKDISCARD = 0x1277;
    /** ioctl BLKSSZGET, {@code _IO(0x12, 104)}: the logical block size of a block device, into an int. */
    private static final long BLKSSZGET = 0x1268;
    private static final int O_RDWR = 02;
    private static final int O_CLOEXEC = 02000000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MemoryLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");

    private static final MethodHandle OPEN = downcall("open",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_INT), Linker.Option.firstVariadicArg(2), CAPTURE_ERRNO);
    private static final MethodHandle CLOSE = downcall("close",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle FALLOCATE = downcall("fallocate",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG), CAPTURE_ERRNO);
    private static final MethodHandle LSEEK = downcall("lseek",
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT), CAPTURE_ERRNO);
    private static final MethodHandle IOCTL = downcall("ioctl",
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.ADDRESS), Linker.Option.firstVariadicArg(2), CAPTURE_ERRNO);
    private static final MethodHandle STRERROR = downcall("strerror",
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    /** A libc call that returned -1; {@link #errno()} says why. */
    static final class ErrnoException extends IOException {
        private final int errno;

        ErrnoException(String call, Path path, int errno) {
            super(call + " on " + path + ": " + strerror(errno) + " (errno " + errno + ")");
            this.errno = errno;
        }

        int errno() {
            return errno;
        }
    }

    private final Path path;
    private final int fd;

    private LinuxFile(Path path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    /** Opens {@code path} read-write (close-on-exec). */
    static LinuxFile open(Path path) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path.toString()), O_RDWR | O_CLOEXEC, 0);
            if (fd < 0) {
                throw new ErrnoException("open", path, errno(state));
            }
            return new LinuxFile(path, fd);
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("open downcall", e);
        }
    }

    /** {@code fallocate(fd, mode, offset, length)}. */
    void fallocate(int mode, long offset, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) FALLOCATE.invokeExact(state, fd, mode, offset, length);
            if (result != 0) {
                throw new ErrnoException("fallocate(mode=0x" + Integer.toHexString(mode) + ", offset=" + offset
                        + ", length=" + length + ")", path, errno(state));
            }
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("fallocate downcall", e);
        }
    }

    /**
     * {@code lseek(fd, offset, whence)} with {@link #SEEK_DATA} or {@link #SEEK_HOLE}: the offset found. The position
     * of this descriptor is not used by any other call, so moving it is harmless.
     */
    long seek(long offset, int whence) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            long result = (long) LSEEK.invokeExact(state, fd, offset, whence);
            if (result < 0) {
                throw new ErrnoException("lseek(offset=" + offset + ", whence=" + whence + ")", path, errno(state));
            }
            return result;
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("lseek downcall", e);
        }
    }

    /** {@code ioctl(fd, BLKSSZGET)}: the logical block size of a block device, the unit of its discards. */
    int logicalBlockSize() throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment size = arena.allocate(ValueLayout.JAVA_INT);
            int result = (int) IOCTL.invokeExact(state, fd, BLKSSZGET, size);
            if (result != 0) {
                throw new ErrnoException("ioctl(BLKSSZGET)", path, errno(state));
            }
            return size.get(ValueLayout.JAVA_INT, 0);
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("ioctl downcall", e);
        }
    }

    /** {@code ioctl(fd, BLKDISCARD, {offset, length})}, for a block device. */
    void blockDiscard(long offset, long length) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment range = arena.allocateFrom(ValueLayout.JAVA_LONG, offset, length);
            int result = (int) IOCTL.invokeExact(state, fd, BLKDISCARD, range);
            if (result != 0) {
                throw new ErrnoException("ioctl(BLKDISCARD, offset=" + offset + ", length=" + length + ")", path,
                        errno(state));
            }
        } catch (ErrnoException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("ioctl downcall", e);
        }
    }

    @Override
    public void close() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            if ((int) CLOSE.invokeExact(state, fd) != 0) {
                throw new ErrnoException("close", path, errno(state));
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("close downcall", e);
        }
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static String strerror(int errno) {
        try {
            MemorySegment message = (MemorySegment) STRERROR.invokeExact(errno);
            return message.reinterpret(Integer.MAX_VALUE).getString(0);
        } catch (Throwable e) {
            return "errno " + errno;
        }
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        MemorySegment symbol = LINKER.defaultLookup().find(name)
                .orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        return LINKER.downcallHandle(symbol, descriptor, options);
    }
}
