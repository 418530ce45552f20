package org.pcache.cache;

import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.PersistenceMode;
import org.pcache.pmem.PmemRegion;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * A region for power-cut runs that go on after each cut: it knows, at any moment, what a power failure could leave,
 * and builds such an image ({@link #crashImage}) without disturbing the run.
 *
 * <p>Model, as {@code CrashSimPmemRegion}'s, at a coarser grain of bookkeeping: the program reads and writes a
 * volatile view (a {@link SparseRegion}, or a {@link CrashImageRegion} when a cut's recovery is traced in turn); a
 * store marks its 4 KiB pages pending (keeping their durable content); {@link #flush} captures the
 * current content of the 64-byte lines in its range; {@link #drain} makes every captured line durable. In a crash
 * image each line whose durable content differs from the view independently keeps the durable content, takes the
 * latest, or is torn (each 8-byte word old or new). Only durable and latest contents are candidates, as in the
 * simulator. Bookkeeping per page, not per line, keeps a 400 MiB run cheap.
 *
 * <p>Every store, flush and drain is an event of the run's {@link PowerTrace}, taken under its lock; drains are
 * classified by the metadata they make durable (a segment generation, dirty_tail, key_tail, cache_info) so the trace
 * can cut there more often.
 *
 * <p>Threading: any thread; stores, flushes, drains and {@link #crashImage} under the trace's lock, reads without.
 */
final class TracedRegion implements PmemRegion {

    static final int PAGE = 4096;
    private static final int LINES_PER_PAGE = PAGE / LINE_SIZE;

    /** Bits of what the stores since the last drain touched. */
    private static final int GEN = 1;
    private static final int DIRTY_TAIL = 2;
    private static final int KEY_TAIL = 4;
    private static final int CACHE_INFO = 8;

    /** A page whose durable content may differ from the view. */
    private static final class Page {
        byte[] durable;
        /** Durable content with the lines flushed since the last drain captured; null when none was. */
        byte[] flushed;

        Page(byte[] durable) {
            this.durable = durable;
        }
    }

    private final PowerTrace trace;
    private final long size;
    /** The volatile view: what the program reads and what a power cut starts from. */
    private final PmemRegion store;
    private final Map<Long, Page> pending = new HashMap<>();
    private final List<Long> flushedPages = new ArrayList<>();
    private int touched;
    private boolean closed;

    /** Traces the stores to {@code store}, whose whole content is taken as durable; closing this closes it. */
    TracedRegion(PowerTrace trace, PmemRegion store) {
        this.trace = trace;
        this.store = store;
        this.size = store.size();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        trace.lock.lock();
        try {
            beforeStore(offset, length);
            store.write(offset, src, srcOffset, length);
        } finally {
            trace.lock.unlock();
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        store.read(offset, dst, dstOffset, length);
    }

    @Override
    public void zero(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        trace.lock.lock();
        try {
            beforeStore(offset, length);
            store.zero(offset, length);
        } finally {
            trace.lock.unlock();
        }
    }

    @Override
    public long getLongAcquire(long offset) {
        return store.getLongAcquire(offset);
    }

    @Override
    public void putLongRelease(long offset, long value) {
        Objects.checkFromIndexSize(offset, Long.BYTES, size);
        trace.lock.lock();
        try {
            beforeStore(offset, Long.BYTES);
            store.putLongRelease(offset, value);
        } finally {
            trace.lock.unlock();
        }
    }

    @Override
    public void flush(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        trace.lock.lock();
        try {
            trace.at(PowerTrace.Kind.FLUSH, false);
            if (length == 0) {
                return;
            }
            long firstLine = offset / LINE_SIZE;
            long endLine = (offset + length - 1) / LINE_SIZE + 1;
            for (long page = firstLine / LINES_PER_PAGE; page <= (endLine - 1) / LINES_PER_PAGE; page++) {
                Page p = pending.get(page);
                if (p == null) {
                    continue;
                }
                if (p.flushed == null) {
                    p.flushed = p.durable.clone();
                    flushedPages.add(page);
                }
                long from = Math.max(firstLine, page * LINES_PER_PAGE) * LINE_SIZE;
                long to = Math.min(endLine, (page + 1) * LINES_PER_PAGE) * LINE_SIZE;
                store.read(from, MemorySegment.ofArray(p.flushed), from - page * PAGE, to - from);
            }
        } finally {
            trace.lock.unlock();
        }
    }

    @Override
    public void drain() {
        trace.lock.lock();
        try {
            PowerTrace.Kind kind = drainKind();
            trace.at(kind, false);
            for (long page : flushedPages) {
                Page p = pending.get(page);
                p.durable = p.flushed;
                p.flushed = null;
                if (Arrays.equals(p.durable, pageContent(page))) {
                    pending.remove(page);
                }
            }
            flushedPages.clear();
            touched = 0;
            trace.at(kind, true);
        } finally {
            trace.lock.unlock();
        }
    }

    @Override
    public MemorySegment view(long offset, long length) {
        return store.view(offset, length);
    }

    @Override
    public PersistenceMode mode() {
        return PersistenceMode.SIMULATED;
    }

    @Override
    public void close() {
        trace.lock.lock();
        try {
            if (!closed) {
                closed = true;
                store.close();
            }
        } finally {
            trace.lock.unlock();
        }
    }

    /**
     * An image a power failure now could leave, drawn from {@code random}: a copy-on-write region over this one's
     * view, valid only while the caller holds the trace's lock (the view must not change under it).
     */
    CrashImageRegion crashImage(SplittableRandom random) {
        Map<Long, byte[]> pages = new HashMap<>();
        long[] indexes = pending.keySet().stream().mapToLong(Long::longValue).sorted().toArray();
        for (long page : indexes) {
            byte[] durable = pending.get(page).durable;
            byte[] latest = pageContent(page);
            byte[] image = latest.clone();
            boolean differs = false;
            for (int line = 0; line < LINES_PER_PAGE; line++) {
                int at = line * LINE_SIZE;
                if (Arrays.equals(durable, at, at + LINE_SIZE, latest, at, at + LINE_SIZE)) {
                    continue;
                }
                differs = true;
                switch (random.nextInt(3)) {
                    case 0 -> System.arraycopy(durable, at, image, at, LINE_SIZE);
                    case 1 -> { }
                    default -> {
                        for (int word = at; word < at + LINE_SIZE; word += Long.BYTES) {
                            if (random.nextBoolean()) {
                                System.arraycopy(durable, word, image, word, Long.BYTES);
                            }
                        }
                    }
                }
            }
            if (differs) {
                pages.put(page, image);
            }
        }
        return new CrashImageRegion(store, pages);
    }

    private PowerTrace.Kind drainKind() {
        if ((touched & GEN) != 0) {
            return PowerTrace.Kind.GEN_DRAIN;
        }
        if ((touched & DIRTY_TAIL) != 0) {
            return PowerTrace.Kind.DIRTY_TAIL_DRAIN;
        }
        if ((touched & KEY_TAIL) != 0) {
            return PowerTrace.Kind.KEY_TAIL_DRAIN;
        }
        if ((touched & CACHE_INFO) != 0) {
            return PowerTrace.Kind.CACHE_INFO_DRAIN;
        }
        return PowerTrace.Kind.DRAIN;
    }

    private void beforeStore(long offset, long length) {
        int area = area(offset);
        touched |= area;
        if (area == 0) {
            trace.at(PowerTrace.Kind.DATA_STORE, false);
        } else {
            trace.tick();
        }
        if (length == 0) {
            return;
        }
        long last = (offset + length - 1) / PAGE;
        for (long page = offset / PAGE; page <= last; page++) {
            if (!pending.containsKey(page)) {
                pending.put(page, new Page(pageContent(page)));
            }
        }
    }

    /** The metadata bit of a store at {@code offset}; 0 for data, kset log and the superblock. */
    private static int area(long offset) {
        if (offset < CacheDeviceLayout.SEGMENTS_OFFSET) {
            if (offset >= CacheDeviceLayout.DIRTY_TAIL_OFFSET) {
                return DIRTY_TAIL;
            }
            if (offset >= CacheDeviceLayout.KEY_TAIL_OFFSET) {
                return KEY_TAIL;
            }
            return offset >= CacheDeviceLayout.CACHE_INFO_OFFSET ? CACHE_INFO : 0;
        }
        long inSegment = (offset - CacheDeviceLayout.SEGMENTS_OFFSET) % CacheDeviceLayout.SEGMENT_SIZE;
        boolean ctrl = inSegment >= CacheDeviceLayout.SEGMENT_CTRL_OFFSET
                && inSegment < CacheDeviceLayout.SEGMENT_DATA_OFFSET;
        return ctrl ? GEN : 0;
    }

    private byte[] pageContent(long page) {
        byte[] content = new byte[PAGE];
        store.read(page * PAGE, MemorySegment.ofArray(content), 0, PAGE);
        return content;
    }
}
