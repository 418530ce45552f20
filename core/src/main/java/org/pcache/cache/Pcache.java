package org.pcache.cache;

import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingExtent;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheInfo;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.RegionFailedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A running persistent write-back cache, dm-pcache in a Java library: it takes the requests, reports the status and
 * closes the cache that {@link #open} opened. Writes land in a persistent memory region and are acknowledged from
 * there; reads are served from the region when cached and from the backing device otherwise.
 *
 * <p>Durability: a completed write is durable once a later {@link #flushAsync() flush} completes, immediately when
 * written with {@link Durability#FUA}, and in any case within about {@link CacheOptions#ksetFlushDelay()}. A crash or
 * power failure loses nothing that was durable; {@link #close()} leaves dirty data in the region, and the next
 * {@link #open} replays it.
 *
 * <p>Requests: offsets and lengths are multiples of {@value #SECTOR_SIZE} bytes inside {@link #size()}; reads and
 * writes move at most {@value #MAX_IO_LENGTH} bytes. A write's source buffer may be reused once its future completes; a
 * read's destination must stay valid until then. A full cache delays writes, it never fails them.
 *
 * <p>Lifecycle: {@link #open} validates or formats the region, replays its log, starts writeback and GC, and returns
 * the running cache; {@link #close()} ends it for good, within a bounded time, and never without the keys of
 * acknowledged writes (see {@link #close(Duration)}). A request made once close has begun fails with {@link CacheClosedException}: the future of an
 * asynchronous call fails with it, a blocking call throws it.
 *
 * <p>Failure: the first failed persistence operation of the region (an msync, a MAP_SYNC flush), a fault of a memory
 * access of it (SIGBUS: a truncated cache file, a full file system under a sparse one, a poisoned page) and a
 * background job that stops on something it cannot get past fail the cache for good ({@link CacheHealth}, in
 * {@link #status()}): nothing more is written to the region, and every later write, flush and drain fails with
 * {@link CacheFailedException}; reads go on. Close it, fix the cause and open it again: the open replays to the last
 * durable state.
 *
 * <p>Threading: every method may be called from any thread, concurrently. Futures complete on the calling thread
 * (hits, writes) or on the cache's worker threads (misses, requests that waited for space); callers must not block in
 * their continuations.
 */
public final class Pcache implements AutoCloseable {

    /** Unit of offsets and lengths. */
    public static final int SECTOR_SIZE = 512;
    /** Largest read or write. */
    public static final int MAX_IO_LENGTH = 32 * 1024 * 1024;

    /** How long {@link #close()} waits for requests in flight and for room in a full kset log. */
    public static final Duration CLOSE_TIMEOUT = Duration.ofSeconds(60);

    private static final Logger LOG = LoggerFactory.getLogger(Pcache.class);

    /** Where a cache is in its life; it only ever moves forward. */
    private enum State {
        /** Built by the open sequence; writeback and GC not started yet, nobody else holds the cache. */
        OPENING,
        /** Serving requests. */
        RUNNING,
        /** {@link #close()} is refusing new requests and waiting for those in flight. */
        CLOSING,
        /** Closed: pending keys written out, workers stopped. */
        CLOSED
    }

    private final CacheDevice device;
    private final FailStopRegion failStop;
    private final BackingDevice backing;
    private final ScheduledThreadPoolExecutor scheduler;
    private final RequestRouter router;
    private final DeferredRequests deferred;
    private final SegmentMap segments;
    private final KsetLogWriter logWriter;
    private final Ksets ksets;
    private final Writeback writeback;
    private final GarbageCollector gc;
    private final CacheWrite writes;
    private final CacheRead reads;
    private final MissFills fills;
    private final BypassWrite bypass;
    /** The stream of callers that name none. */
    private final ClientStream sharedStream = new ClientStream(this, false);
    private final CacheAllocation allocation;
    private final CacheStats stats = new CacheStats();
    private final AtomicLong inflight = new AtomicLong();
    private final AtomicBoolean closeQueued = new AtomicBoolean();
    private final Object closeLock = new Object();
    /** Guarded by closeLock for writes; read without it on the request path. */
    private volatile State state = State.OPENING;
    /** A close call is running; guarded by closeLock. */
    private boolean closeRunning;
    /**
     * Set once close starts writing out the pending keys: a request that completes after that fails instead, since
     * its key may miss the final kset.
     */
    private volatile boolean lateCompletionsFail;

    /**
     * Builds the running cache's parts around an opened device and the memory {@code replayed} from its log. Reads and
     * writes no media and starts no thread: {@link CacheStart} does that, and calls {@link #start()}.
     */
    Pcache(CacheDevice device, FailStopRegion failStop, BackingDevice backing, CacheOptions options, CacheMode mode,
           CacheStart.Replayed replayed) {
        this.device = device;
        this.failStop = failStop;
        this.backing = backing;
        this.scheduler = replayed.scheduler();
        this.router = new RequestRouter(mode, options.sequentialCutoff(), stats);
        this.deferred = replayed.deferred();
        this.segments = replayed.segments();
        this.logWriter = new KsetLogWriter(device.region(), segments, replayed.keyHead(), replayed.keyHeadSeq(),
                replayed.dirtyTailSeq(), replayed.dirtyBytes(), this::ksetWritten);
        this.gc = new GarbageCollector(device, failStop, segments, logWriter, replayed.tree(), backing.size(),
                options.dataCrc());
        this.writeback = new Writeback(device, failStop, backing, logWriter, segments, options,
                () -> deferred.waitingCount() > 0 || state == State.CLOSING, gc::kick);
        Kset[] streams = new Kset[options.ksetCount()];
        for (int i = 0; i < streams.length; i++) {
            streams[i] = new Kset(logWriter, failStop, scheduler, options.ksetFlushDelay().toNanos());
        }
        this.ksets = new Ksets(streams);
        DataHeads heads = new DataHeads(segments, options.dataHeadCount());
        PmemRegion region = device.region();
        KeyTree tree = replayed.tree();
        this.writes = new CacheWrite(region, tree, heads, ksets, segments, deferred, this::cacheFull,
                device::markDatalessKeys, options.dataCrc());
        this.fills = new MissFills(failStop, tree, heads, ksets, segments, stats, options.dataCrc());
        this.reads = new CacheRead(region, tree, fills, backing, stats, options.dataCrc(), options.readAhead());
        this.bypass = new BypassWrite(tree, backing, writes, stats);
        this.allocation = new CacheAllocation(tree, backing);
        failStop.onFailure(this::failed);
    }

    /**
     * Opens the cache on {@code region} in front of {@code backing}: formats a blank region (any region with
     * {@link CacheOptions#withFormat}), otherwise validates it and replays its log, then starts writeback and GC. The
     * caller keeps ownership of both and closes them after {@link #close()}.
     *
     * @throws org.pcache.pmem.CacheDeviceTooSmallException if the region is under 512 MiB
     * @throws org.pcache.pmem.CacheInfoLostException if both cache_info copies are bad (nothing is written)
     * @throws org.pcache.pmem.DataCrcMismatchException if the cache was created with the other data_crc setting
     * @throws org.pcache.pmem.CorruptMediaException if a record or the log fails validation (nothing is written)
     * @throws BackingBlockSizeException if the backing device cannot take 512-byte aligned I/O (nothing is written)
     */
    public static Pcache open(PmemRegion region, BackingDevice backing, CacheOptions options) throws IOException {
        return CacheStart.start(region, backing, options);
    }

    /** The last step of the open sequence: starts writeback and GC and takes requests. */
    void start() {
        synchronized (closeLock) {
            assert state == State.OPENING : state;
            fills.start();
            writeback.start();
            gc.start();
            state = State.RUNNING;
        }
    }

    /** Size of the cached device in bytes: the backing device's size. */
    public long size() {
        return backing.size();
    }

    /**
     * A new client's stream: requests made through it are one client's for the sequential cutoff (an NBD server opens
     * one per connection). See {@link ClientStream}.
     */
    public ClientStream openStream() {
        return new ClientStream(this, true);
    }

    /** Reads {@code dst.byteSize()} bytes at {@code offset} into {@code dst}. */
    public CompletableFuture<Void> readAsync(long offset, MemorySegment dst) {
        return read(sharedStream, offset, dst);
    }

    /** Writes {@code src} at {@code offset}. */
    public CompletableFuture<Void> writeAsync(long offset, MemorySegment src, Durability durability) {
        return write(sharedStream, offset, src, durability);
    }

    /**
     * Makes {@code [offset, offset + length)} read as zeroes (any length): recorded in the log without data, so it takes
     * no cache space, and written back as a write-zeroes (zero blocks when the backing device cannot zero a range).
     */
    public CompletableFuture<Void> writeZeroesAsync(long offset, long length, Durability durability) {
        return writeZeroes(sharedStream, offset, length, durability);
    }

    CompletableFuture<Void> read(ClientStream stream, long offset, MemorySegment dst) {
        checkIo(offset, dst.byteSize());
        if (!enter()) {
            return refused();
        }
        Request done = new Request();
        switch (router.read(stream, offset, dst.byteSize())) {
            // A miss must not keep a copy of a bypassing write the backing device could still lose (BypassWrite).
            case CACHE, THROUGH -> reads.read(offset, dst, done, !bypass.hasUnflushed());
            case BYPASS -> reads.read(offset, dst, done, false);
        }
        return done;
    }

    CompletableFuture<Void> write(ClientStream stream, long offset, MemorySegment src, Durability durability) {
        checkIo(offset, src.byteSize());
        if (!enter()) {
            return refused();
        }
        if (failStop.failed()) {
            return failedRequest();
        }
        Request done = new Request();
        stats.writes.increment();
        stats.bytesWritten.add(src.byteSize());
        switch (router.write(stream, offset, src.byteSize())) {
            case CACHE -> writes.write(offset, src, durability, done);
            case THROUGH -> bypass.writeThrough(offset, src, durability, done);
            case BYPASS -> bypass.bypass(offset, src.byteSize(), src, durability, done);
        }
        return done;
    }

    CompletableFuture<Void> writeZeroes(ClientStream stream, long offset, long length, Durability durability) {
        checkRange(offset, length);
        if (!enter()) {
            return refused();
        }
        if (failStop.failed()) {
            return failedRequest();
        }
        Request done = new Request();
        stats.writes.increment();
        stats.bytesWritten.add(length);
        switch (router.writeZeroes(stream, offset, length)) {
            case CACHE, THROUGH -> writes.writeZeroes(offset, length, durability, done);
            case BYPASS -> bypass.bypass(offset, length, null, durability, done);
        }
        return done;
    }

    /**
     * Discards {@code [offset, offset + length)} (any length): the cache drops what it holds of the range and records
     * the discard in its log without data, so it takes no cache space. The range then reads as zeroes until writeback
     * has passed the discard on to the backing device (which does nothing when it cannot discard) and GC has reclaimed
     * it; from then on it reads what the backing device returns for it. Durable like a write: after a later flush, at
     * the latest after {@link CacheOptions#ksetFlushDelay()}.
     */
    public CompletableFuture<Void> discardAsync(long offset, long length) {
        return discardAsync(offset, length, Durability.BUFFERED);
    }

    /** {@link #discardAsync(long, long)}, durable before it completes with {@link Durability#FUA}. */
    public CompletableFuture<Void> discardAsync(long offset, long length, Durability durability) {
        checkRange(offset, length);
        if (!enter()) {
            return refused();
        }
        if (failStop.failed()) {
            return failedRequest();
        }
        Request done = new Request();
        writes.discard(offset, length, durability, done);
        return done;
    }

    /**
     * Drops {@code [offset, offset + length)} (any length) from the cache, persistently, without touching the backing
     * device: an INVALIDATE record leaves the range out of the index at once and again after a replay, so reads go to
     * the backing device; writeback sends nothing for it (it only cuts older data keys of its own kset). For callers
     * that have put newer data on the backing device themselves.
     */
    CompletableFuture<Void> invalidateAsync(long offset, long length, Durability durability) {
        checkRange(offset, length);
        if (!enter()) {
            return refused();
        }
        if (failStop.failed()) {
            return failedRequest();
        }
        Request done = new Request();
        writes.invalidate(offset, length, durability, done);
        return done;
    }

    /**
     * The allocation map of {@code [offset, offset + length)} (any offset and length inside the device): the backing
     * device's holes, minus every range the cache holds, which is data. At least one run from {@code offset}; the runs
     * may cover less than {@code length} (ask again for the rest). See {@link CacheAllocation}.
     */
    public CompletableFuture<List<BackingExtent>> allocationAsync(long offset, long length) {
        if (offset < 0 || length <= 0 || offset > size() - length) {
            throw new IllegalArgumentException("range offset=" + offset + " length=" + length + " outside the device of "
                    + size() + " bytes");
        }
        if (state != State.RUNNING) {
            return CompletableFuture.failedFuture(closedException());
        }
        return allocation.allocation(offset, length);
    }

    /** Makes every write completed before this call durable. */
    public CompletableFuture<Void> flushAsync() {
        if (!enter()) {
            return refused();
        }
        if (failStop.failed()) {
            return failedRequest();
        }
        Request done = new Request();
        stats.flushes.increment();
        if (!bypass.hasUnflushed()) {
            new Flush(done).retry();
            return done;
        }
        // Writes reached the backing device past the cache (write-through, bypass): flush it too, after the log.
        CompletableFuture<Void> logged = new CompletableFuture<>();
        new Flush(logged).retry();
        logged.thenCompose(ignored -> bypass.flushBacking()).whenComplete((ignored, error) -> {
            if (error == null) {
                done.complete(null);
            } else {
                done.completeExceptionally(error instanceof CompletionException c ? c.getCause() : error);
            }
        });
        return done;
    }

    /**
     * Writes everything back: flushes, then completes once writeback has passed the end of the log as it was after the
     * flush. Progress shows in {@link #status()} ({@link WritebackStatus#dirtyBytes()}, its rate). With gc_percent 0
     * GC then empties the cache until key_tail reaches key_head.
     */
    public CompletableFuture<Void> drainAsync() {
        if (!enter()) {
            return refused();
        }
        Request done = new Request();
        flushAsync().whenComplete((ignored, error) -> {
            if (error != null) {
                done.completeExceptionally(error);
            } else {
                writeback.drainTo(logWriter.seq(), done);
            }
        });
        return done;
    }

    /** Blocking {@link #drainAsync}. */
    public void drain() throws IOException {
        await(drainAsync());
    }

    /** Blocking {@link #readAsync}. */
    public void read(long offset, MemorySegment dst) throws IOException {
        await(readAsync(offset, dst));
    }

    /** Blocking {@link #writeAsync}. */
    public void write(long offset, MemorySegment src, Durability durability) throws IOException {
        await(writeAsync(offset, src, durability));
    }

    /** Blocking {@link #writeZeroesAsync}. */
    public void writeZeroes(long offset, long length, Durability durability) throws IOException {
        await(writeZeroesAsync(offset, length, durability));
    }

    /** Blocking {@link #discardAsync}. */
    public void discard(long offset, long length) throws IOException {
        await(discardAsync(offset, length));
    }

    /** Blocking {@link #flushAsync}. */
    public void flush() throws IOException {
        await(flushAsync());
    }

    /** dm-pcache's status fields and pcache's counters, now. */
    public CacheStatus status() {
        CacheInfo info = device.cacheInfo();
        return new CacheStatus(device.superblockFlags(), device.physicalSegmentCount(), device.segmentCount(),
                segments.usedCount(), info.gcPercent(), info.flags(), logWriter.position(), device.dirtyTail(),
                device.keyTail(), counters(), writeback.status(), gc.status(), failStop.health(),
                backing.connection(), bypassCounters());
    }

    /** The cache mode requests are routed for now. */
    public CacheMode mode() {
        return router.mode();
    }

    /**
     * Switches the cache mode online and persists it in cache_info; requests that arrive after this returns are routed
     * for {@code mode}. Nothing is lost or reordered: dirty data stays readable and is written back in every mode, and
     * a write that would go past the cache while it holds data of its range goes into it ({@link BypassWrite}).
     *
     * @throws CacheClosedException if close has begun (nothing is written)
     * @throws CacheFailedException if the cache failed (nothing is written)
     */
    public void setMode(CacheMode mode) throws CacheClosedException, CacheFailedException {
        synchronized (closeLock) {
            if (state != State.RUNNING) {
                throw closedException();
            }
            if (failStop.failed()) {
                throw failStop.exception();
            }
            try {
                device.writeCacheInfo(device.cacheInfo().withCacheMode(mode.onMedia()));
            } catch (RegionFailedException e) {
                throw failStop.exception();
            }
            router.setMode(mode);
        }
        LOG.info("cache mode {}", mode.label());
    }

    /**
     * What each segment holds now, by logical id (the dashboard's segment map), data segments split into
     * {@link SegmentUse#DIRTY} and clean {@link SegmentUse#DATA} by reading the dirty part of the log
     * ({@link DirtySegments}: up to a few MiB of the region per call). Once the cache failed, or when reading the log
     * faults, data segments are not split (all {@link SegmentUse#DATA}): status keeps answering.
     */
    public SegmentUse[] segmentUses() {
        SegmentUse[] uses = segments.uses();
        if (failStop.failed()) {
            return uses; // the region may fault on every read now; status must still answer
        }
        CachePos dirtyTail = device.dirtyTail();
        try {
            return new DirtySegments(device, segments, backing.size()).mark(uses, dirtyTail, logWriter.position());
        } catch (RegionFailedException e) {
            return segments.uses();
        }
    }

    /**
     * Changes gc_percent (0..90) and persists it. Throws {@link IllegalArgumentException} for other values.
     *
     * @throws CacheClosedException if close has begun (nothing is written)
     * @throws CacheFailedException if the cache failed (nothing is written)
     */
    public void setGcPercent(int percent) throws CacheClosedException, CacheFailedException {
        CacheOptions.checkGcPercent(percent);
        synchronized (closeLock) {
            if (state != State.RUNNING) {
                throw closedException();
            }
            try {
                device.writeCacheInfo(device.cacheInfo().withGcPercent(percent));
            } catch (RegionFailedException e) {
                throw failStop.exception();
            }
        }
        gc.kick();
    }

    /**
     * Sets writeback's watermarks, in percent of the data area dirty: below {@code low} writeback idles (unless a drain,
     * a write waiting for space or a close asks), from {@code high} on it keeps its full depth in flight, in between a
     * quarter of it. Not persisted: the next open takes {@link CacheOptions#writebackLow()} and
     * {@link CacheOptions#writebackHigh()}.
     *
     * @throws IllegalArgumentException unless 0 <= low <= high <= 100
     * @throws CacheClosedException if close has begun
     */
    public void setWritebackWatermarks(int low, int high) throws CacheClosedException {
        CacheOptions.checkWatermarks(low, high);
        if (state != State.RUNNING) {
            throw closedException();
        }
        writeback.setWatermarks(low, high);
    }

    /** {@link #close(Duration)} with {@link #CLOSE_TIMEOUT}. */
    @Override
    public void close() {
        close(CLOSE_TIMEOUT);
    }

    /**
     * Stops the cache, waiting at most {@code timeout}: refuses new requests, fails requests still waiting for free
     * space, waits for requests in flight, writes out every pending key (waiting for writeback and GC to make room
     * when the kset log is full) and stops GC and writeback after the kset each is working on. Dirty data stays in the
     * region and is written back after the next open. Returns at once when the cache is closed or another call is
     * closing it.
     *
     * <p>Everything it waits for shares the one deadline: requests in flight, the miss fill landing, room in a full
     * log, and GC, writeback and the scheduler finishing what they are doing (writeback may be waiting for a write
     * to a stalled backing device).
     *
     * @throws CacheCloseException when the timeout left something: requests still in flight (the cache is closed,
     *         and they fail when they end), a miss fill, GC, writeback or a timer still running (the cache is closed;
     *         they end after their current step and write nothing more: a kset writeback was working on is written
     *         back again after the next open), or keys of acknowledged writes the full log could not take (the cache
     *         stays closing with writeback and GC running, so nothing acknowledged is lost; close again to finish)
     */
    public void close(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (closeLock) {
            if (closeRunning || (state != State.RUNNING && state != State.CLOSING)) {
                return;
            }
            closeRunning = true;
            state = State.CLOSING;
        }
        deferred.close();
        writeback.cancelDrains();
        long inflightLeft = awaitInflight(deadline);
        boolean fillsStopped = stopFills(deadline);
        lateCompletionsFail = true;
        int unlogged = failStop.failed() ? 0 : writeOutKeys(deadline);
        if (unlogged > 0) {
            synchronized (closeLock) {
                closeRunning = false;
            }
            String left = unlogged + " key(s) of acknowledged writes are not in the kset log yet: it is full and "
                    + "writeback and GC made no room within " + timeout.toMillis() + " ms; the cache stays closing "
                    + "with writeback and GC running, close it again to finish" + inFlight(inflightLeft);
            LOG.error("close incomplete: {}", left);
            throw new CacheCloseException(left);
        }
        ksets.stopTimers();
        List<String> left = new ArrayList<>();
        if (inflightLeft > 0) {
            left.add(inflightLeft + " request(s) still in flight (they fail when they end)");
        }
        if (!fillsStopped) {
            left.add("a miss fill still storing its data (pcache-fill)");
        }
        stopThreads(deadline, left);
        synchronized (closeLock) {
            state = State.CLOSED;
            closeRunning = false;
        }
        if (failStop.failed()) {
            LOG.warn("closed failed cache key_head={} dirty_tail={} key_tail={}, {} key(s) not written out; the next "
                    + "open replays to the last durable state: {}", logWriter.position(), device.dirtyTail(),
                    device.keyTail(), ksets.pendingKeys(), failStop.health().cause());
        } else {
            LOG.info("closed cache key_head={} dirty_tail={} key_tail={}", logWriter.position(), device.dirtyTail(),
                    device.keyTail());
        }
        if (!left.isEmpty()) {
            String message = "closed after " + timeout.toMillis() + " ms with " + String.join(", ", left)
                    + "; every acknowledged write's key is in the kset log";
            LOG.warn("{}", message);
            throw new CacheCloseException(message);
        }
    }

    /**
     * Stops GC, writeback and the scheduler, waiting for them until {@code deadline} at most; adds to {@code left} each
     * one still running then. A worker abandoned that way ends after its current step and writes nothing more.
     */
    private void stopThreads(long deadline, List<String> left) {
        try {
            if (!gc.stop(deadline)) {
                left.add("GC still in its step (pcache-gc)");
            }
            if (!writeback.stop(deadline)) {
                left.add("writeback still waiting for the backing device (pcache-writeback); it writes nothing "
                        + "more, and the kset it was writing back is written back again after the next open");
            }
            scheduler.shutdown();
            if (!scheduler.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                left.add("a kset timer or retry still running (pcache-scheduler)");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            left.add("close was interrupted while stopping its threads");
        }
    }

    /**
     * Waits, at most {@code timeout}, until every miss read that completed so far has landed its fill or dropped it;
     * true when it has. Reads never need this (one that meets a fill still waiting copies its data); tests that count
     * keys or compare log positions do.
     */
    boolean awaitMissFills(Duration timeout) throws InterruptedException {
        return fills.awaitIdle(System.nanoTime() + timeout.toNanos());
    }

    /** Drops the miss fills still queued and waits, until {@code deadline}, for the one landing; true once it ended. */
    private boolean stopFills(long deadline) {
        try {
            return fills.stop(deadline);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static String inFlight(long requests) {
        return requests == 0 ? "" : " with " + requests + " request(s) still in flight";
    }

    /**
     * Writes out every pending key, waiting for segments to free while the log is full; returns how many keys are
     * still pending at {@code deadline} (0 when all are in the log).
     */
    private int writeOutKeys(long deadline) {
        try {
            while (true) {
                if (failStop.failed()) {
                    return 0; // nothing more can be written; what was durable is what the next open replays
                }
                long epoch = deferred.freeEpoch();
                if (ksets.closeAll(false)) {
                    return 0;
                }
                gc.kick();
                writeback.kick();
                if (!deferred.awaitFreed(epoch, deadline)) {
                    return ksets.closeAll(false) ? 0 : ksets.pendingKeys();
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return ksets.closeAll(false) ? 0 : ksets.pendingKeys();
        }
    }

    private void ksetWritten() {
        writeback.kick();
    }

    /** The cache just failed (on the failing thread): end what waits for progress that can no longer come. */
    private void failed() {
        deferred.fail(failStop.exception());
        writeback.kick();
        gc.kick();
    }

    /**
     * A request is waiting for space. Writeback can only free what is in closed ksets, and a kset may hold enough keys
     * to pin most of the cache, so write out the pending keys now rather than when their timer fires.
     */
    private void cacheFull() {
        gc.kick();
        writeback.kick();
        if (closeQueued.compareAndSet(false, true)) {
            try {
                scheduler.execute(this::closeKsetsForSpace);
            } catch (RejectedExecutionException e) {
                closeQueued.set(false); // closing: close() writes out the pending keys itself
            }
        }
    }

    private void closeKsetsForSpace() {
        closeQueued.set(false);
        try {
            ksets.closeAll(false);
        } catch (RegionFailedException e) {
            // The cache failed (and said so); the requests that waited for this close were failed with it.
        }
    }

    private CacheStatus.Counters counters() {
        return new CacheStatus.Counters(stats.reads.sum(), stats.writes.sum(), stats.flushes.sum(),
                stats.readHitsFull.sum(), stats.readHitsPartial.sum(), stats.readMisses.sum(), stats.bytesRead.sum(),
                stats.bytesWritten.sum(), stats.bytesFromCache.sum(), stats.bytesFromBacking.sum(),
                stats.missFills.sum(), deferred.deferralCount(), deferred.waitingCount(), stats.dataCrcErrors.sum());
    }

    private CacheStatus.Bypass bypassCounters() {
        int mode = BypassReason.MODE.ordinal();
        int sequential = BypassReason.SEQUENTIAL.ordinal();
        return new CacheStatus.Bypass(stats.bypassRequests[mode].sum(), stats.bypassBytes[mode].sum(),
                stats.bypassRequests[sequential].sum(), stats.bypassBytes[sequential].sum(),
                stats.cachedInstead.sum());
    }

    /** A flush that found the log full waits like a write. */
    private final class Flush implements DeferredRequests.Waiter {
        private final CompletableFuture<Void> done;

        Flush(CompletableFuture<Void> done) {
            this.done = done;
        }

        @Override
        public void retry() {
            long epoch = deferred.freeEpoch();
            try {
                if (ksets.closeAll(true) && logWriter.markBarrier()) {
                    done.complete(null);
                } else if (deferred.defer(this, epoch)) {
                    cacheFull();
                }
            } catch (RegionFailedException e) {
                done.completeExceptionally(e);
            }
        }

        @Override
        public void fail(IOException error) {
            done.completeExceptionally(error);
        }
    }

    /**
     * Counts a request in flight, or refuses it (false) when the cache is not running; counting before checking means
     * close() either refuses a request or waits for it.
     */
    private boolean enter() {
        inflight.incrementAndGet();
        if (state != State.RUNNING) {
            end();
            return false;
        }
        return true;
    }

    /** The answer to a write-class request that reached a failed cache. */
    private CompletableFuture<Void> failedRequest() {
        Request done = new Request();
        done.completeExceptionally(failStop.exception());
        return done;
    }

    /** The answer to a request that {@link #enter()} refused. */
    private CompletableFuture<Void> refused() {
        return CompletableFuture.failedFuture(closedException());
    }

    private CacheClosedException closedException() {
        return new CacheClosedException(state == State.CLOSED ? "cache is closed" : "cache is closing");
    }

    /** A request's future: completing it (or cancelling it) ends the request's in-flight count, with no callback. */
    private final class Request extends CompletableFuture<Void> {
        @Override
        public boolean complete(Void value) {
            if (lateCompletionsFail) {
                return completeExceptionally(new CacheClosedException("cache closed before the request completed"));
            }
            return ended(super.complete(value));
        }

        @Override
        public boolean completeExceptionally(Throwable error) {
            Throwable typed = error instanceof RegionFailedException ? failStop.exception() : error;
            return ended(super.completeExceptionally(typed));
        }

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            return ended(super.cancel(mayInterruptIfRunning));
        }

        private boolean ended(boolean completedNow) {
            if (completedNow) {
                end();
            }
            return completedNow;
        }
    }

    private void end() {
        if (inflight.decrementAndGet() == 0 && state != State.RUNNING) {
            synchronized (closeLock) {
                closeLock.notifyAll();
            }
        }
    }

    /** Waits until no request is in flight or {@code deadline} passed; returns how many are still in flight. */
    private long awaitInflight(long deadline) {
        synchronized (closeLock) {
            while (inflight.get() > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(closeLock, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return inflight.get();
        }
    }

    private void checkIo(long offset, long length) {
        if (length > MAX_IO_LENGTH) {
            throw new IllegalArgumentException("length " + length + " exceeds the maximum of " + MAX_IO_LENGTH);
        }
        checkRange(offset, length);
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length <= 0 || offset % SECTOR_SIZE != 0 || length % SECTOR_SIZE != 0
                || offset > size() - length) {
            throw new IllegalArgumentException("request offset=" + offset + " length=" + length + " (expected: "
                    + SECTOR_SIZE + "-byte aligned, inside the device of " + size() + " bytes)");
        }
    }

    private static void await(CompletableFuture<Void> future) throws IOException {
        try {
            future.get();
        } catch (ExecutionException e) {
            throw asIoException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for the cache", e);
        } catch (CompletionException e) {
            throw asIoException(e.getCause());
        }
    }

    private static IOException asIoException(Throwable cause) {
        if (cause instanceof IOException io) {
            return io;
        }
        if (cause instanceof RuntimeException runtime) {
            throw runtime;
        }
        return new IOException(cause);
    }
}
