package org.pcache.pmem;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The power-cut simulator: a {@link PmemRegion} that remembers, per 64-byte line, what a power failure could leave
 * behind, and can produce such an image on demand.
 *
 * <p>Model. The program reads and writes a <em>volatile view</em>. A store (write, zero, putLongRelease) marks the
 * lines it touches dirty. {@link #flush} captures the current content of the dirty lines in its range as flushed;
 * {@link #drain} makes the flushed content of every line flushed before it (by any thread) durable. At a
 * {@link #powerCut}, every line that is not durable independently keeps its durable content, takes its latest volatile
 * content, or is torn: each of its 8-byte words takes the old or the new value. Aligned 8-byte stores are therefore
 * never torn, as on x86.
 *
 * <p>Simplifications, all on the side of fewer outcomes than hardware could produce:
 * <ul>
 *   <li>Only the durable and the latest content of a line are candidates, not intermediate values (a line written
 *       twice between drains never comes back with the first write only).</li>
 *   <li>A line flushed and then written again before the drain becomes durable with its flushed content; the later
 *       store is not a candidate for the drain, only for the power cut.</li>
 *   <li>Lines are independent: no ordering among lines that are not separated by a drain.</li>
 * </ul>
 *
 * <p>Durable on flush: a simulator made with {@code durableOnFlush} models a MAP_SYNC mapping instead, where writing
 * back the cache lines makes them durable: {@link #flush} makes the content it captures durable at once, and
 * {@link #drain} only counts as a persistence point (for freezing). Stores not flushed are at risk as before.
 *
 * <p>Freezing lets a test run a workload to its end and still cut the power "as of" a persistence point:
 * {@link #freezeAtDrain} right after drain k, {@link #freezeBeforeDrain} at the moment drain k is called.
 *
 * <p>Cost: proportional to the lines stored since they were last durable, never to the region size, so a 512 MiB
 * region can be cut and reopened hundreds of times. The volatile view is a sparse tmpfs mapping (memory only for the
 * pages touched); the durable image is the view plus the saved durable content of not-yet-durable lines.
 *
 * <p>Threading: every method may be called from any thread; stores, flushes, drains and cuts serialise on one lock,
 * reads do not. Call {@link #powerCut} only while no other thread uses the region.
 */
public final class CrashSimPmemRegion implements PmemRegion {
    private static final int WORD_SIZE = Long.BYTES;
    private static final int WORDS_PER_LINE = LINE_SIZE / WORD_SIZE;
    private static final VarHandle ORDERED_LONG =
            ValueLayout.JAVA_LONG.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** A line whose durable content may differ from the volatile view. */
    private static final class Line {
        final long index;
        byte[] durable;
        /** Content captured by the last flush, awaiting a drain; null when not flushed since. */
        byte[] flushed;

        Line(long index, byte[] durable) {
            this.index = index;
            this.durable = durable;
        }
    }

    /** A line as captured by a freeze: its durable content and, if it was not durable then, its content at the time. */
    private record FrozenLine(byte[] durable, byte[] latest) {
    }

    private final long size;
    private final boolean durableOnFlush;
    private final Arena arena;
    private final MemorySegment volatileView;
    private final ReentrantLock lock = new ReentrantLock();

    /** Lines not durable, by line index; guarded by lock. */
    private final Map<Long, Line> pendingLines = new HashMap<>();
    /** Lines flushed since the last drain; guarded by lock. */
    private final List<Line> flushedLines = new ArrayList<>();
    /** The frozen image's differences from the volatile view, by line index; null when not frozen; guarded by lock. */
    private Map<Long, FrozenLine> frozenLines;
    /** Drain number to freeze after, or -1; guarded by lock. */
    private long freezeAt = -1;
    /** Drain number to freeze before, or -1; guarded by lock. */
    private long freezeBefore = -1;
    private long drainCount;
    private long flushCount;
    private long storeCount;
    private boolean closed;

    /** A zero-filled region of {@code size} bytes, all of it durable, whose flushed lines become durable at a drain. */
    public CrashSimPmemRegion(long size) {
        this(size, false);
    }

    /**
     * A zero-filled region of {@code size} bytes, all of it durable; with {@code durableOnFlush} a flushed line is
     * durable when the flush returns, as on a MAP_SYNC mapping.
     */
    public CrashSimPmemRegion(long size, boolean durableOnFlush) {
        if (size <= 0 || size % LINE_SIZE != 0) {
            throw new IllegalArgumentException("size must be a positive multiple of " + LINE_SIZE + ", got " + size);
        }
        this.size = size;
        this.durableOnFlush = durableOnFlush;
        this.arena = Arena.ofShared();
        try {
            this.volatileView = mapSparse(size, arena);
        } catch (IOException e) {
            arena.close();
            throw new UncheckedIOException("cannot create the simulator's volatile view", e);
        }
    }

    private static MemorySegment mapSparse(long size, Arena arena) throws IOException {
        Path shm = Path.of("/dev/shm");
        Path dir = Files.isDirectory(shm) && Files.isWritable(shm) ? shm
                : Path.of(System.getProperty("java.io.tmpdir"));
        Path file = Files.createTempFile(dir, "pcache-crashsim-", ".img");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return channel.map(FileChannel.MapMode.READ_WRITE, 0, size, arena);
        } finally {
            // The mapping keeps the (sparse) pages alive; unmapping at close frees them.
            Files.deleteIfExists(file);
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public void write(long offset, MemorySegment src, long srcOffset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        lock.lock();
        try {
            beforeStore(offset, length);
            MemorySegment.copy(src, srcOffset, volatileView, offset, length);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void read(long offset, MemorySegment dst, long dstOffset, long length) {
        MemorySegment.copy(volatileView, offset, dst, dstOffset, length);
    }

    @Override
    public void zero(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        lock.lock();
        try {
            beforeZero(offset, length);
            volatileView.asSlice(offset, length).fill((byte) 0);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public long getLongAcquire(long offset) {
        checkAligned(offset);
        return (long) ORDERED_LONG.getAcquire(volatileView, offset);
    }

    @Override
    public void putLongRelease(long offset, long value) {
        checkAligned(offset);
        Objects.checkFromIndexSize(offset, WORD_SIZE, size);
        lock.lock();
        try {
            beforeStore(offset, WORD_SIZE);
            ORDERED_LONG.setRelease(volatileView, offset, value);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void flush(long offset, long length) {
        Objects.checkFromIndexSize(offset, length, size);
        lock.lock();
        try {
            flushCount++;
            if (length == 0) {
                return;
            }
            long first = offset / LINE_SIZE;
            long last = (offset + length - 1) / LINE_SIZE;
            if (last - first + 1 > pendingLines.size()) {
                for (Line line : pendingLines.values()) {
                    if (line.index >= first && line.index <= last) {
                        captureFlushed(line);
                    }
                }
            } else {
                for (long index = first; index <= last; index++) {
                    Line line = pendingLines.get(index);
                    if (line != null) {
                        captureFlushed(line);
                    }
                }
            }
            if (durableOnFlush) {
                makeFlushedDurable();
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void drain() {
        lock.lock();
        try {
            if (drainCount + 1 == freezeBefore) {
                freezeNow();
            }
            makeFlushedDurable();
            drainCount++;
            if (drainCount == freezeAt) {
                freezeNow();
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public MemorySegment view(long offset, long length) {
        return volatileView.asSlice(offset, length).asReadOnly();
    }

    @Override
    public PersistenceMode mode() {
        return PersistenceMode.SIMULATED;
    }

    @Override
    public void close() {
        lock.lock();
        try {
            if (!closed) {
                closed = true;
                arena.close();
            }
        } finally {
            lock.unlock();
        }
    }

    /** Persistence points so far: the number of {@link #drain} calls since creation. */
    public long drainCount() {
        lock.lock();
        try {
            return drainCount;
        } finally {
            lock.unlock();
        }
    }

    /** Number of {@link #flush} calls since creation. */
    public long flushCount() {
        lock.lock();
        try {
            return flushCount;
        } finally {
            lock.unlock();
        }
    }

    /** Number of stores (write, zero, putLongRelease) since creation: unchanged means nothing was written. */
    public long storeCount() {
        lock.lock();
        try {
            return storeCount;
        } finally {
            lock.unlock();
        }
    }

    /** Number of lines that are not durable (stored since their content last became durable). */
    public int pendingLineCount() {
        lock.lock();
        try {
            return pendingLines.size();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Freezes the durable image, and the content of the lines not durable, right after drain number {@code k} (counted
     * from creation) completes; if {@code k} equals {@link #drainCount()} it freezes now. Later stores, flushes and
     * drains change only the volatile view, until {@link #powerCut} builds its image from the frozen state.
     */
    public void freezeAtDrain(long k) {
        lock.lock();
        try {
            if (frozenLines != null || freezeAt >= 0 || freezeBefore >= 0) {
                throw new IllegalStateException("already frozen or set to freeze");
            }
            if (k < drainCount) {
                throw new IllegalArgumentException("drain " + k + " is past: " + drainCount + " drains done");
            }
            if (k == drainCount) {
                freezeNow();
            } else {
                freezeAt = k;
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * Freezes the state at the moment drain number {@code k} is called, before it takes effect: everything stored since
     * the previous drain, flushed or not, is then still at risk. This is the power cut "just before the persistence
     * point", which {@link #freezeAtDrain}{@code (k - 1)} cannot give when the stores and their flush come after drain
     * k - 1 (a replicated record's write, for example). {@code k} must be after the drains done so far.
     */
    public void freezeBeforeDrain(long k) {
        lock.lock();
        try {
            if (frozenLines != null || freezeAt >= 0 || freezeBefore >= 0) {
                throw new IllegalStateException("already frozen or set to freeze");
            }
            if (k <= drainCount) {
                throw new IllegalArgumentException("drain " + k + " has been called: " + drainCount + " drains done");
            }
            freezeBefore = k;
        } finally {
            lock.unlock();
        }
    }

    /** Whether a freeze has been captured. */
    public boolean frozen() {
        lock.lock();
        try {
            return frozenLines != null;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Cuts the power: builds an image a power failure could leave (from the frozen state if frozen, otherwise from the
     * current one), deterministic for a given {@code seed} and history, and makes it both the durable image and the
     * volatile view. Freeze and pending state are cleared; the region stays open for the next "boot".
     */
    public void powerCut(long seed) {
        lock.lock();
        try {
            Map<Long, FrozenLine> candidates = frozenLines != null ? frozenLines : currentCandidates();
            long[] indexes = candidates.keySet().stream().mapToLong(Long::longValue).sorted().toArray();
            SplittableRandom random = new SplittableRandom(seed);
            for (long index : indexes) {
                FrozenLine line = candidates.get(index);
                byte[] image = line.latest() == null ? line.durable() : pick(line, random);
                MemorySegment.copy(MemorySegment.ofArray(image), 0, volatileView, index * LINE_SIZE, LINE_SIZE);
            }
            pendingLines.clear();
            flushedLines.clear();
            frozenLines = null;
            freezeAt = -1;
            freezeBefore = -1;
        } finally {
            lock.unlock();
        }
    }

    /** A copy of the durable bytes of {@code [offset, offset + length)}: the frozen image while frozen. */
    public byte[] durableBytes(long offset, int length) {
        Objects.checkFromIndexSize(offset, length, size);
        lock.lock();
        try {
            byte[] bytes = new byte[length];
            MemorySegment.copy(volatileView, offset, MemorySegment.ofArray(bytes), 0, length);
            if (length == 0) {
                return bytes;
            }
            long first = offset / LINE_SIZE;
            long last = (offset + length - 1) / LINE_SIZE;
            for (long index = first; index <= last; index++) {
                byte[] durable = durableLine(index);
                if (durable != null) {
                    overlay(durable, index * LINE_SIZE, bytes, offset);
                }
            }
            return bytes;
        } finally {
            lock.unlock();
        }
    }

    /** A copy of the volatile bytes of {@code [offset, offset + length)}. */
    public byte[] volatileBytes(long offset, int length) {
        byte[] bytes = new byte[length];
        read(offset, MemorySegment.ofArray(bytes), 0, length);
        return bytes;
    }

    @Override
    public String toString() {
        return "CrashSimPmemRegion[size=" + size + (durableOnFlush ? " durable on flush" : "") + "]";
    }

    private void beforeStore(long offset, long length) {
        storeCount++;
        if (length == 0) {
            return;
        }
        long last = (offset + length - 1) / LINE_SIZE;
        for (long index = offset / LINE_SIZE; index <= last; index++) {
            trackLine(index);
        }
    }

    /** Saves the durable (and, when frozen, the frozen) content of a line about to change. */
    private void trackLine(long index) {
        if (frozenLines != null && !frozenLines.containsKey(index)) {
            // Clean at the freeze and untouched since: the view still holds the frozen durable content.
            frozenLines.put(index, new FrozenLine(lineContent(index), null));
        }
        if (!pendingLines.containsKey(index)) {
            pendingLines.put(index, new Line(index, lineContent(index)));
        }
    }

    /** Like beforeStore, but a zero line that is not at risk stays untracked: zeroing it changes nothing. */
    private void beforeZero(long offset, long length) {
        storeCount++;
        if (length == 0) {
            return;
        }
        long last = (offset + length - 1) / LINE_SIZE;
        for (long index = offset / LINE_SIZE; index <= last; index++) {
            boolean untracked = !pendingLines.containsKey(index)
                    && (frozenLines == null || !frozenLines.containsKey(index));
            if (!untracked || !zeroLine(index)) {
                trackLine(index);
            }
        }
    }

    private boolean zeroLine(long index) {
        for (int word = 0; word < WORDS_PER_LINE; word++) {
            if (volatileView.get(ValueLayout.JAVA_LONG_UNALIGNED, index * LINE_SIZE + word * WORD_SIZE) != 0) {
                return false;
            }
        }
        return true;
    }

    private void captureFlushed(Line line) {
        if (line.flushed == null) {
            flushedLines.add(line);
        }
        line.flushed = lineContent(line.index);
    }

    private void makeFlushedDurable() {
        for (Line line : flushedLines) {
            line.durable = line.flushed;
            line.flushed = null;
            if (Arrays.equals(line.durable, lineContent(line.index))) {
                pendingLines.remove(line.index);
            }
        }
        flushedLines.clear();
    }

    private void freezeNow() {
        frozenLines = currentCandidates();
        freezeAt = -1;
        freezeBefore = -1;
    }

    private Map<Long, FrozenLine> currentCandidates() {
        Map<Long, FrozenLine> candidates = new HashMap<>();
        for (Line line : pendingLines.values()) {
            candidates.put(line.index, new FrozenLine(line.durable.clone(), lineContent(line.index)));
        }
        return candidates;
    }

    private byte[] durableLine(long index) {
        if (frozenLines != null) {
            FrozenLine frozen = frozenLines.get(index);
            return frozen == null ? null : frozen.durable();
        }
        Line line = pendingLines.get(index);
        return line == null ? null : line.durable;
    }

    private static byte[] pick(FrozenLine line, SplittableRandom random) {
        return switch (random.nextInt(3)) {
            case 0 -> line.durable();
            case 1 -> line.latest();
            default -> tear(line.durable(), line.latest(), random);
        };
    }

    private static byte[] tear(byte[] old, byte[] latest, SplittableRandom random) {
        byte[] torn = old.clone();
        for (int word = 0; word < WORDS_PER_LINE; word++) {
            if (random.nextBoolean()) {
                System.arraycopy(latest, word * WORD_SIZE, torn, word * WORD_SIZE, WORD_SIZE);
            }
        }
        return torn;
    }

    private byte[] lineContent(long index) {
        byte[] content = new byte[LINE_SIZE];
        MemorySegment.copy(volatileView, index * LINE_SIZE, MemorySegment.ofArray(content), 0, LINE_SIZE);
        return content;
    }

    private static void overlay(byte[] line, long lineOffset, byte[] bytes, long bytesOffset) {
        long from = Math.max(lineOffset, bytesOffset);
        long to = Math.min(lineOffset + LINE_SIZE, bytesOffset + bytes.length);
        System.arraycopy(line, (int) (from - lineOffset), bytes, (int) (from - bytesOffset), (int) (to - from));
    }

    private static void checkAligned(long offset) {
        if ((offset & (WORD_SIZE - 1)) != 0) {
            throw new IllegalArgumentException("ordered 8-byte access at offset " + offset + " is not 8-byte aligned");
        }
    }
}
