package org.pcache.cache;

import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The region a power cut left, as {@link TracedRegion#crashImage} builds it: the traced region's view, with the pages
 * whose lines the cut changed replaced, and copy on write for everything the cache that boots on it stores. Stores are
 * durable at once; to cut the boot as well, trace this image ({@link TracedRegion}). The traced region's view must not
 * change while this image is used.
 *
 * <p>Threading: any thread; one lock guards the copied pages.
 */
final class CrashImageRegion implements PmemRegion {

    private static final int PAGE = TracedRegion.PAGE;
    private static final VarHandle ORDERED_LONG =
            ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final PmemRegion base;
    /** Pages that differ from base, by page index; guarded by itself. */
    private final Map<Long, MemorySegment> pages = new HashMap<>();

    CrashImageRegion(PmemRegion base, Map<Long, byte[]> crashPages) {
        this.base = base;
        crashPages.forEach((page, content) -> {
            MemorySegment own = newPage();
            MemorySegment.copy(MemorySegment.ofArray(content), 0, own, 0, PAGE);
            pages.put(page, own);
        });
    }

    @Override
    public long size() {
        return base.size();
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        Objects.checkFromIndexSize(offset, length, size());
        synchronized (pages) {
            for (long at = offset; at < offset + length; ) {
                long page = at / PAGE;
                long end = Math.min(offset + length, (page + 1) * PAGE);
                MemorySegment.copy(src, srcOffset + (at - offset), ownPage(page), at - page * PAGE, end - at);
                at = end;
            }
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        Objects.checkFromIndexSize(offset, length, size());
        synchronized (pages) {
            for (long at = offset; at < offset + length; ) {
                long page = at / PAGE;
                long end = Math.min(offset + length, (page + 1) * PAGE);
                MemorySegment own = pages.get(page);
                if (own != null) {
                    MemorySegment.copy(own, at - page * PAGE, dst, dstOffset + (at - offset), end - at);
                } else {
                    base.read(at, dst, dstOffset + (at - offset), end - at);
                }
                at = end;
            }
        }
    }

    @Override
    public void zero(long offset, long length) {
        write(offset, MemorySegment.ofArray(new byte[Math.toIntExact(length)]), 0, length);
    }

    @Override
    public long getLongAcquire(long offset) {
        synchronized (pages) {
            MemorySegment own = pages.get(offset / PAGE);
            return own != null ? (long) ORDERED_LONG.getAcquire(own, offset % PAGE)
                    : base.getLongAcquire(offset);
        }
    }

    @Override
    public void putLongRelease(long offset, long value) {
        synchronized (pages) {
            ORDERED_LONG.setRelease(ownPage(offset / PAGE), offset % PAGE, value);
        }
    }

    @Override
    public void flush(long offset, long length) {
    }

    @Override
    public void drain() {
    }

    /** A copy when the range holds a page of this image's own; a read-only slice of the base otherwise. */
    @Override
    public MemorySegment view(long offset, long length) {
        synchronized (pages) {
            for (long page = offset / PAGE; page <= (offset + Math.max(length, 1) - 1) / PAGE; page++) {
                if (pages.containsKey(page)) {
                    MemorySegment copy = MemorySegment.ofArray(new byte[Math.toIntExact(length)]);
                    read(offset, copy, 0, length);
                    return copy.asReadOnly();
                }
            }
        }
        return base.view(offset, length);
    }

    @Override
    public PersistenceMode mode() {
        return PersistenceMode.SIMULATED;
    }

    @Override
    public void close() {
    }

    /** A page of longs, so ordered 8-byte accesses are aligned. */
    private static MemorySegment newPage() {
        return MemorySegment.ofArray(new long[PAGE / Long.BYTES]);
    }

    /** Guarded by pages. */
    private MemorySegment ownPage(long page) {
        MemorySegment own = pages.get(page);
        if (own == null) {
            own = newPage();
            base.read(page * PAGE, own, 0, PAGE);
            pages.put(page, own);
        }
        return own;
    }
}
