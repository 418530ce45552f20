package org.pcache.pmem;

import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The ranges of a shared file mapping flushed since the last msync, and the group-committing drain that msyncs them.
 *
 * <p>dm-pcache persists every kset close with one barrier after many flushing copies; with msync as the barrier the
 * flushes must be remembered and synced together, because each msync is a system call (about 0.4 us on tmpfs, 160 us
 * on ext4). A flush only sets bits in a bitmap of fixed-size chunks; a drain takes the bits and msyncs each run of
 * consecutive chunks once.
 *
 * <p>Failures: the first failed msync fails its drain and every later one ({@link RegionFailedException}), for good:
 * the bits it took are gone, and after a failed msync Linux may have dropped the dirty pages, so no later msync could
 * prove them durable.
 */
final class PendingFlushes {
    /*
     * Why a drain may return early, and why that is safe.
     *
     * Every drain takes a ticket (drainRequests) before it waits for the lock. The drain that holds the lock first
     * reads the current ticket number, then scans and msyncs; when it is done, every ticket up to that number is
     * covered: those drains were requested, and therefore their flushes were recorded (a flush's getAndBitwiseOr
     * happens-before the flusher's ticket increment, which happens-before the scanning drain read the ticket count),
     * before the scan began. A waiting drain whose ticket is covered returns without a scan of its own. A bit cleared
     * by an earlier scan was msynced before that scan released the lock. So drain() never returns before everything
     * flushed before its call is durable, and concurrent drains share one msync pass.
     *
     * The flush always does the atomic OR rather than skipping bits it sees set: the OR is what makes the flusher's
     * stores to the mapping happen-before the msync of a drain that clears the bit later.
     */

    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final int MIN_CHUNK_SHIFT = 16;
    private static final int MAX_CHUNKS_SHIFT = 16;

    private final MemorySegment mapping;
    private final int chunkShift;
    private final long[] words;
    private final AtomicLong drainRequests = new AtomicLong();
    private final ReentrantLock drainLock = new ReentrantLock();
    /** Every drain ticket up to this number is durable; guarded by drainLock. */
    private long ticketsCovered;
    /** The msync that failed, or null; guarded by drainLock. */
    private RegionFailedException failure;

    PendingFlushes(MemorySegment mapping) {
        this.mapping = mapping;
        long size = mapping.byteSize();
        int sizeShift = Long.SIZE - Long.numberOfLeadingZeros(Math.max(size - 1, 1));
        // 64 KiB chunks up to 4 GiB, larger beyond, so that a drain never scans more than 1024 words.
        this.chunkShift = Math.max(MIN_CHUNK_SHIFT, sizeShift - MAX_CHUNKS_SHIFT);
        long chunks = ((size - 1) >>> chunkShift) + 1;
        this.words = new long[Math.toIntExact((chunks + Long.SIZE - 1) / Long.SIZE)];
    }

    /** Remembers that {@code [offset, offset + length)} must be msynced by the next drain. */
    void record(long offset, long length) {
        if (length == 0) {
            return;
        }
        long chunk = offset >>> chunkShift;
        long last = (offset + length - 1) >>> chunkShift;
        while (chunk <= last) {
            int word = (int) (chunk >>> 6);
            long wordLast = Math.min(last, ((long) word << 6) | 63);
            long bits = bitRange((int) (chunk & 63), (int) (wordLast & 63));
            WORDS.getAndBitwiseOr(words, word, bits);
            chunk = wordLast + 1;
        }
    }

    /**
     * Returns once every range recorded before the call is durable.
     *
     * @throws RegionFailedException if this or an earlier drain's msync failed
     */
    void drain() {
        long ticket = drainRequests.incrementAndGet();
        drainLock.lock();
        try {
            if (failure != null) {
                throw new RegionFailedException("an earlier msync failed, nothing can be made durable any more: "
                        + failure.getMessage(), failure);
            }
            if (ticketsCovered >= ticket) {
                return;
            }
            long covering = drainRequests.get();
            syncRecorded();
            ticketsCovered = covering;
        } finally {
            drainLock.unlock();
        }
    }

    /** Chunk size in bytes. */
    long chunkSize() {
        return 1L << chunkShift;
    }

    /** Whether chunk {@code chunk} awaits an msync. */
    boolean pending(long chunk) {
        return ((long) WORDS.getOpaque(words, (int) (chunk >>> 6)) & (1L << chunk)) != 0;
    }

    /** Number of chunks awaiting an msync. */
    int pendingChunks() {
        int count = 0;
        for (int word = 0; word < words.length; word++) {
            count += Long.bitCount((long) WORDS.getOpaque(words, word));
        }
        return count;
    }

    private void syncRecorded() {
        long runStart = -1;
        long runEnd = -1;
        for (int word = 0; word < words.length; word++) {
            if ((long) WORDS.getOpaque(words, word) == 0) {
                continue;
            }
            long bits = (long) WORDS.getAndSet(words, word, 0L);
            while (bits != 0) {
                int bit = Long.numberOfTrailingZeros(bits);
                int ones = Long.numberOfTrailingZeros(~(bits >>> bit));
                long chunk = ((long) word << 6) | bit;
                if (chunk != runEnd) {
                    if (runStart >= 0) {
                        force(runStart, runEnd);
                    }
                    runStart = chunk;
                }
                runEnd = chunk + ones;
                bits &= ~bitRange(bit, bit + ones - 1);
            }
        }
        if (runStart >= 0) {
            force(runStart, runEnd);
        }
    }

    private void force(long firstChunk, long endChunk) {
        long start = firstChunk << chunkShift;
        long end = Math.min(endChunk << chunkShift, mapping.byteSize());
        try {
            mapping.asSlice(start, end - start).force();
        } catch (UncheckedIOException e) {
            failure = new RegionFailedException("msync of [" + start + ", " + end + ") failed: " + e.getMessage(),
                    e.getCause());
            throw failure;
        }
    }

    private static long bitRange(int from, int to) {
        long upTo = to == 63 ? -1L : (1L << (to + 1)) - 1;
        return upTo & (-1L << from);
    }
}
