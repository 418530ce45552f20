package org.pcache.pmem;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * Pre-faults the start of a writable shared mapping, so that no request pays a first-touch page fault there (on a
 * sparse tmpfs file a fault also allocates and zeroes the page). First {@code madvise(MADV_POPULATE_WRITE)} (Linux 5.14
 * and later) through an FFM downcall; where the kernel refuses it (EINVAL: an older kernel) a touch loop stores every
 * page's first byte back into it, which faults the page in writable and changes nothing.
 *
 * <p>Cost: populating allocates what it touches, so on a sparse file it uses the RAM (tmpfs) or disk blocks of the
 * populated range at once; the caller bounds the range. Only at open: nothing else may store into the range meanwhile
 * (the touch loop's read-then-store would lose a concurrent store).
 */
final class MappingPrefault {

    /** How the range was populated. */
    enum Method {
        /** {@code madvise(MADV_POPULATE_WRITE)}. */
        MADVISE,
        /** A store into every page, since the kernel refused the madvise. */
        TOUCH,
        /** Nothing to populate: an empty range. */
        NONE
    }

    static final long PAGE_SIZE = 4096;
    /** mman-common.h: populate (prefault) page tables writable. */
    private static final int MADV_POPULATE_WRITE = 23;
    private static final int EINVAL = 22;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MemoryLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle MADVISE = LINKER.downcallHandle(
            LINKER.defaultLookup().find("madvise").orElseThrow(() -> new UnsatisfiedLinkError("libc has no madvise")),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_INT),
            Linker.Option.captureCallState("errno"));

    private MappingPrefault() {
    }

    /**
     * Populates the first {@code length} bytes of {@code mapping} (rounded up to a page, capped at its size), by
     * madvise or, when {@code useMadvise} is false or the kernel refuses it, by the touch loop.
     *
     * @throws IOException if madvise fails for another reason than EINVAL (ENOMEM or EFAULT: the file system is full
     *                     under a sparse file; EHWPOISON)
     */
    static Method populate(MemorySegment mapping, long length, boolean useMadvise) throws IOException {
        long bytes = length >= mapping.byteSize() ? mapping.byteSize() : (length + PAGE_SIZE - 1) / PAGE_SIZE * PAGE_SIZE;
        if (bytes <= 0) {
            return Method.NONE;
        }
        MemorySegment range = mapping.asSlice(0, bytes);
        if (useMadvise) {
            int errno = madvise(range);
            if (errno == 0) {
                return Method.MADVISE;
            }
            if (errno != EINVAL) {
                throw new IOException("madvise(MADV_POPULATE_WRITE) of the first " + bytes
                        + " bytes of the cache mapping failed (errno " + errno + "): is its file system full?");
            }
        }
        touch(range);
        return Method.TOUCH;
    }

    /** 0 or the errno of {@code madvise(range, MADV_POPULATE_WRITE)}. */
    private static int madvise(MemorySegment range) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            int result = (int) MADVISE.invokeExact(state, range, range.byteSize(), MADV_POPULATE_WRITE);
            return result == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new AssertionError("madvise downcall", e);
        }
    }

    private static void touch(MemorySegment range) {
        for (long page = 0; page < range.byteSize(); page += PAGE_SIZE) {
            range.set(ValueLayout.JAVA_BYTE, page, range.get(ValueLayout.JAVA_BYTE, page));
        }
    }
}
