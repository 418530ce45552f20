package org.pcache.cache;

import org.pcache.backing.BackingDevice;
import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheInfo;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.PmemRegion;
import org.pcache.pmem.RegionFailedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The open sequence (dm-pcache's cache_start): checks the backing device, validates or formats the region, replays the
 * kset log, builds the running {@link Pcache}, persists init_done and starts writeback and GC. Every media access and
 * every thread start of an open happens here, in this order; {@link Pcache}'s constructor does neither.
 *
 * <p>Persistence order: nothing is written to an existing region before it validated and its log replayed, so a
 * corrupt or mismatched cache is left as it was; init_done is persisted after replay and before the workers start.
 * The region is wrapped fail-stop ({@link FailStopRegion}) before anything reads it; a region that fails during the
 * open fails the open with an {@link IOException}.
 *
 * <p>Threading: runs on the opening thread; the cache is shared only once {@link #start} returns it.
 */
final class CacheStart {

    private static final Logger LOG = LoggerFactory.getLogger(CacheStart.class);

    /**
     * What replay leaves behind: the index and segment map rebuilt from the log and where the log ends, with the parts
     * the segment map signals when a segment frees (built before it, and so before the cache).
     */
    record Replayed(ScheduledThreadPoolExecutor scheduler, KeyTree tree, SegmentMap segments,
                    DeferredRequests deferred, KeyCleaner cleaner, CachePos keyHead, long keyHeadSeq,
                    long dirtyTailSeq, long dirtyBytes) {
    }

    private CacheStart() {
    }

    /** Opens the cache; see {@link Pcache#open} for what can go wrong. */
    static Pcache start(PmemRegion region, BackingDevice backing, CacheOptions options) throws IOException {
        BackingBlockSizeException.requireSectorIo(backing.alignment());
        try {
            return start(new FailStopRegion(region), backing, options);
        } catch (RegionFailedException e) {
            throw new IOException("cannot open the cache: " + e.getMessage(), e);
        }
    }

    private static Pcache start(FailStopRegion region, BackingDevice backing, CacheOptions options)
            throws IOException {
        CacheDevice device = CacheDevice.open(region, new CacheDevice.Options(options.dataCrc(),
                options.cacheMode().onMedia(), options.gcPercent(), options.format()));
        CacheMode mode = CacheMode.fromOnMedia(device.cacheInfo().cacheMode());
        ScheduledThreadPoolExecutor scheduler = scheduler();
        try {
            Pcache cache = new Pcache(device, region, backing, options, mode,
                    replay(device, backing, options, scheduler));
            CacheInfo info = device.cacheInfo();
            if (!info.initDone()) {
                device.writeCacheInfo(info.withInitDone());
            }
            cache.start();
            return cache;
        } catch (IOException | RuntimeException e) {
            scheduler.shutdownNow(); // nothing ran on it yet: the cache never started
            throw e;
        }
    }

    /** The single thread for timers, retries and sweeps; it is created by the first task, after the open. */
    private static ScheduledThreadPoolExecutor scheduler() {
        ScheduledThreadPoolExecutor scheduler = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread thread = new Thread(runnable, "pcache-scheduler");
            thread.setDaemon(true);
            return thread;
        });
        scheduler.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        return scheduler;
    }

    private static Replayed replay(CacheDevice device, BackingDevice backing, CacheOptions options,
                                   ScheduledThreadPoolExecutor scheduler) throws IOException {
        KeyTree tree = new KeyTree(backing.size());
        KeyCleaner cleaner = new KeyCleaner(tree, scheduler);
        DeferredRequests deferred = new DeferredRequests(scheduler);
        SegmentMap segments = new SegmentMap(device, releasedRanges -> {
            deferred.segmentFreed();
            cleaner.segmentFreed(releasedRanges);
        });
        Replay replay = new Replay(device, segments, tree, backing.size(), options.dataCrc());
        long started = System.nanoTime();
        CachePos head = replay.run();
        LOG.info("replayed ksets={} keys={} stale_keys={} key_tail={} dirty_tail={} key_head={} in {} ms",
                replay.ksets(), replay.keys(), replay.staleKeys(), device.keyTail(), device.dirtyTail(), head,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started));
        return new Replayed(scheduler, tree, segments, deferred, cleaner, head, replay.keyHeadSeq(),
                replay.dirtyTailSeq(), replay.dirtyBytes());
    }
}
