package org.pcache.cache;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.FilterEngine;
import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Power cuts in the middle of a live, concurrent run, at moments the workload-replay crash test never reaches: GC
 * reclaiming ksets and persisting a segment's new generation, data landing in reused segments, miss fills landing as
 * CLEAN keys, writeback writing to and flushing the backing disk and advancing dirty_tail, gc_percent changed through
 * the API, and two threads writing and reading at once.
 *
 * <p>One run per seed: two writers push 400 MiB of plain and FUA writes and write-zeroes (512 B to 64 KiB) and
 * flushes into the 4 MiB window [2 MiB, 6 MiB) of a 6 MiB device, which straddles two 4 MiB stretches (so both kset
 * streams fill and writes cross the boundary); writer 0 owns [2 MiB, 5 MiB), writer 1 [5 MiB, 6 MiB), and both read
 * anywhere in the window (so their misses race the other writer). The cache is a minimum-size one (512 MiB); writer 0
 * moves gc_percent through 0, 50, 10, 0, 30 on the way. Halfway the cache is closed and opened again: replay,
 * writeback and GC resuming from the replayed tails, and next-fit allocation starting over at segment 0, so the second
 * half reuses segments GC reclaimed. Every third seed keeps data CRCs (replay then verifies every live key's data),
 * with fewer cuts. Region and backing disk are traced ({@link TracedRegion}, {@link TracedDisk}) on one clock
 * ({@link PowerTrace}); at seeded random events (more often at the rare barriers) the clock stops every thread that
 * touches persistent state and checks one power cut there:
 * <ol>
 *   <li>build a crash image of the region (each line not durable: old, new or torn) and of the disk (each unflushed
 *       write kept, dropped or torn by sector);</li>
 *   <li>the disk alone holds, in every sector of the window, zeroes or a write of that sector (never garbage);</li>
 *   <li>walk the image's log offline: for every sector, is its newest logged key clean (before dirty_tail, or a miss
 *       fill)?</li>
 *   <li>open a cache on the images (replay) — it must open — and read the whole window through it: every sector holds
 *       its last durable write or a later one ({@link DurabilityModel}), never older data and never garbage; where the
 *       log says clean, the backing disk alone holds exactly what the cache returns (writeback never let dirty_tail
 *       pass data the disk could lose, a fill never recorded data the disk no longer holds);</li>
 *   <li>every {@value #DRAIN_CHECK_EVERY}th cut, drain that cache: the backing disk alone then holds what the cache
 *       returned;</li>
 *   <li>one cut in {@value #CUT_THE_BOOT_EVERY} boots its images traced as well, so its replay, drain (writeback, GC)
 *       and close are cut in turn, up to {@value #MAX_CUTS_PER_BOOT} times, each checked as above: a power cut during
 *       recovery.</li>
 * </ol>
 * Live reads are checked too: a read returns the last write acknowledged before it was submitted, or a later one.
 * Sectors are checked by {@link SectorPattern#idOfSampled}. A failure names the seed, the cut's event and the sector;
 * the interleaving depends on thread timing, so a seed reproduces the workload and the cut draws, not always the same
 * cuts.
 */
class PcacheLiveCrashTest {

    private static final long DEVICE_SIZE = 6L << 20;
    private static final long WINDOW_FROM = 2L << 20;
    private static final long WINDOW_END = 6L << 20;
    /** Writer w owns [OWNED[w], OWNED[w + 1]). */
    private static final long[] OWNED = {WINDOW_FROM, 5L << 20, WINDOW_END};
    private static final int SECTOR = SectorPattern.SECTOR;
    private static final long BYTES_PER_RUN = 400L << 20;
    private static final int MAX_CUTS_PER_RUN = 4000;
    private static final int WRITERS = 2;
    private static final int[] GC_PERCENTS = {0, 50, 10, 0, 30};
    private static final int DRAIN_CHECK_EVERY = 64;
    /** One cut in this many boots its image traced, cuts that boot (replay, a drain, close) too, and checks each. */
    private static final int CUT_THE_BOOT_EVERY = 512;
    private static final int MAX_CUTS_PER_BOOT = 10;
    private static final Map<PowerTrace.Kind, Double> BOOT_CHANCE = new EnumMap<>(Map.of(
            PowerTrace.Kind.DATA_STORE, 0.0002,
            PowerTrace.Kind.DRAIN, 0.002,
            PowerTrace.Kind.GEN_DRAIN, 0.5,
            PowerTrace.Kind.DIRTY_TAIL_DRAIN, 0.004,
            PowerTrace.Kind.KEY_TAIL_DRAIN, 0.004,
            PowerTrace.Kind.CACHE_INFO_DRAIN, 1.0,
            PowerTrace.Kind.DISK_WRITE, 0.001,
            PowerTrace.Kind.DISK_FLUSH, 0.004));
    private static final Duration WAIT = Duration.ofSeconds(60);

    /** Probability that an event of each kind becomes a cut; a run scales those below 1 (a data-CRC run down). */
    private static final Map<PowerTrace.Kind, Double> CHANCE = new EnumMap<>(Map.of(
            PowerTrace.Kind.DATA_STORE, 0.006,
            PowerTrace.Kind.FLUSH, 0.012,
            PowerTrace.Kind.DRAIN, 0.06,
            PowerTrace.Kind.GEN_DRAIN, 1.0,
            PowerTrace.Kind.DIRTY_TAIL_DRAIN, 0.12,
            PowerTrace.Kind.KEY_TAIL_DRAIN, 0.12,
            PowerTrace.Kind.CACHE_INFO_DRAIN, 1.0,
            PowerTrace.Kind.DISK_WRITE, 0.03,
            PowerTrace.Kind.DISK_FLUSH, 0.12));

    /** Every third seed keeps data CRCs, which replay verifies for every live key: fewer cuts, each costs more. */
    static Stream<Arguments> seeds() {
        return SoakSeeds.or(1, 2, 3).mapToObj(seed -> Arguments.of(seed, seed % 3 == 0));
    }

    @ParameterizedTest(name = "seed={0} dataCrc={1}")
    @MethodSource("seeds")
    void everyCutAcrossBackgroundWorkKeepsWhatWasDurable(long seed, boolean dataCrc) throws Exception {
        Run run = new Run(seed, dataCrc);
        try {
            run.go();
        } finally {
            run.close();
        }
        String where = "seed=" + seed + " cuts " + run.trace.cuts();
        assertThat(run.failure).as(where).isNull();
        assertThat(run.trace.cutCount()).as(where).isGreaterThanOrEqualTo(dataCrc ? 150 : 1800);
        Map<PowerTrace.Kind, Integer> cuts = run.trace.cuts();
        for (PowerTrace.Kind kind : List.of(PowerTrace.Kind.GEN_DRAIN, PowerTrace.Kind.DIRTY_TAIL_DRAIN,
                PowerTrace.Kind.KEY_TAIL_DRAIN, PowerTrace.Kind.CACHE_INFO_DRAIN, PowerTrace.Kind.DISK_FLUSH,
                PowerTrace.Kind.DISK_WRITE, PowerTrace.Kind.DRAIN)) {
            assertThat(cuts.getOrDefault(kind, 0)).as(where + " cuts at " + kind).isPositive();
        }
        assertThat(run.cutsWithReusedSegments).as(where + " cuts whose log has data in a reused segment")
                .isPositive();
        assertThat(run.cutsWithFills).as(where + " cuts whose dirty log holds miss fills").isPositive();
        assertThat(run.drainChecks).as(where + " drain checks").isPositive();
        if (!dataCrc) {
            assertThat(run.cutsInBoots).as(where + " cuts during the replay, writeback and GC of a cut's image")
                    .isPositive();
        }
    }

    /** How a cut's image is booted and checked. */
    private enum Boot {
        /** Open, read everything, close. */
        CHECK,
        /** Also drain, then compare the backing disk alone. */
        DRAIN,
        /** As DRAIN, on a traced copy of the images whose own cuts are checked too: a power cut during recovery. */
        CUT_THE_BOOT,
        /** A cut of a CUT_THE_BOOT boot: as CHECK, counted apart. */
        INNER
    }

    /** One seeded run: the traced media, the cache on them, the model, and the checks of every cut. */
    private static final class Run implements AutoCloseable {
        final long seed;
        final PowerTrace trace;
        final TracedRegion region;
        final TracedDisk disk;
        final BackingDevice backing;
        final DurabilityModel model = new DurabilityModel(DEVICE_SIZE);
        final CacheOptions options;
        final AtomicLong written = new AtomicLong();
        /** A buffer of the window's size for the checks, which run one at a time. */
        final MemorySegment diskCopy = MemorySegment.ofArray(new byte[(int) (WINDOW_END - WINDOW_FROM)]);
        /** The disk each cut boots on, overwritten with the cut's crash image. */
        final MemoryEngine imageDisk = new MemoryEngine(DEVICE_SIZE);
        /** The same two for the cuts of a traced boot, which run while an outer cut's buffers are in use. */
        final MemorySegment bootCopy = MemorySegment.ofArray(new byte[(int) (WINDOW_END - WINDOW_FROM)]);
        final MemoryEngine bootImageDisk = new MemoryEngine(DEVICE_SIZE);
        /** The traced boot of a {@link Boot#CUT_THE_BOOT} cut, and the first problem its cuts found. */
        TracedRegion bootRegion;
        TracedDisk bootDisk;
        volatile String bootFailure;
        int cutBoots;
        int cutsInBoots;
        Pcache cache;
        /** The first failed check; guarded by the trace's lock. */
        volatile String failure;
        int cutsWithReusedSegments;
        int cutsWithFills;
        int drainChecks;
        /** The next entry of GC_PERCENTS writer 0 sets; only writer 0 uses it. */
        int gcStep = 1;

        Run(long seed, boolean dataCrc) {
            this.seed = seed;
            this.options = CacheHarness.quietOptions().withGcPercent(GC_PERCENTS[0])
                    .withKsetFlushDelay(Duration.ofMillis(20)).withDataCrc(dataCrc);
            double scale = dataCrc ? 0.16 : 1.15;
            Map<PowerTrace.Kind, Double> chance = new EnumMap<>(PowerTrace.Kind.class);
            CHANCE.forEach((kind, p) -> chance.put(kind, p >= 1 ? p : p * scale));
            this.trace = new PowerTrace(seed, chance, MAX_CUTS_PER_RUN, this::check);
            this.region = new TracedRegion(trace, new SparseRegion(CacheDeviceLayout.MIN_SIZE));
            this.disk = new TracedDisk(trace, DEVICE_SIZE);
            this.backing = BackingDevice.start(disk);
        }

        /** Two halves of the run, the second on a cache closed and opened again (cut as well). */
        void go() throws Exception {
            cache = Pcache.open(region, backing, options);
            trace.arm(true);
            for (int half = 1; half <= 2; half++) {
                long until = BYTES_PER_RUN / 2 * half;
                List<CompletableFuture<Void>> writers = new ArrayList<>();
                for (int w = 0; w < WRITERS; w++) {
                    int writer = w;
                    SplittableRandom random = new SplittableRandom(seed * 31 + half * WRITERS + writer);
                    writers.add(CompletableFuture.runAsync(() -> work(writer, random, until),
                            runnable -> thread(writer, runnable)));
                }
                CompletableFuture.allOf(writers.toArray(CompletableFuture[]::new))
                        .get(WAIT.toMillis() * 3, TimeUnit.MILLISECONDS);
                if (half == 1) {
                    cache.close();
                    cache = Pcache.open(region, backing, options);
                }
            }
            trace.arm(false);
        }

        private static void thread(int writer, Runnable runnable) {
            Thread.ofPlatform().name("test-writer-" + writer).daemon(true).start(runnable);
        }

        /**
         * Writer {@code writer}: plain and FUA writes, write-zeroes and flushes in the range it owns, reads anywhere in
         * the window (so they race the other writer), until {@code until} bytes were written in all; writer 0 moves
         * gc_percent.
         */
        private void work(int writer, SplittableRandom random, long until) {
            long from = OWNED[writer];
            long size = OWNED[writer + 1] - from;
            try {
                while (written.get() < until && failure == null) {
                    int dice = random.nextInt(100);
                    if (dice < 15) {
                        read(random);
                        continue;
                    }
                    if (dice < 20) {
                        long submitted = event();
                        await(cache.flushAsync());
                        trace.lock.lock();
                        try {
                            trace.tick();
                            model.ackFlush(submitted);
                        } finally {
                            trace.lock.unlock();
                        }
                        continue;
                    }
                    boolean zeroes = dice < 25;
                    boolean fua = !zeroes && dice < 35;
                    int len = (1 + random.nextInt(128)) * SECTOR;
                    long off = from + random.nextLong((size - len) / SECTOR + 1) * SECTOR;
                    long id;
                    trace.lock.lock();
                    try {
                        trace.tick();
                        id = model.submitWrite(off, len, fua, zeroes);
                    } finally {
                        trace.lock.unlock();
                    }
                    if (zeroes) {
                        await(cache.writeZeroesAsync(off, len, Durability.BUFFERED));
                    } else {
                        MemorySegment buf = MemorySegment.ofArray(new byte[len]);
                        SectorPattern.fill(buf, off, id);
                        await(cache.writeAsync(off, buf, fua ? Durability.FUA : Durability.BUFFERED));
                    }
                    trace.lock.lock();
                    try {
                        model.ackWrite(id, trace.tick());
                    } finally {
                        trace.lock.unlock();
                    }
                    long total = written.addAndGet(len);
                    if (writer == 0 && total >= gcStep * BYTES_PER_RUN / GC_PERCENTS.length) {
                        cache.setGcPercent(GC_PERCENTS[gcStep++ % GC_PERCENTS.length]);
                    }
                }
            } catch (IOException e) {
                fail("seed=" + seed + ": writer " + writer + " failed: " + e);
            }
        }

        /** Reads anywhere in the window, checking each sector against what was acknowledged before the read began. */
        private void read(SplittableRandom random) throws IOException {
            int len = (1 + random.nextInt(256)) * SECTOR;
            long off = WINDOW_FROM + random.nextLong((WINDOW_END - WINDOW_FROM - len) / SECTOR + 1) * SECTOR;
            MemorySegment buf = MemorySegment.ofArray(new byte[len]);
            long submitted = event();
            await(cache.readAsync(off, buf));
            trace.lock.lock();
            try {
                trace.tick();
                for (int i = 0; i < len / SECTOR; i++) {
                    long id = SectorPattern.idOfSampled(buf, (long) i * SECTOR, off + (long) i * SECTOR);
                    int sector = (int) (off / SECTOR) + i;
                    if (!model.readable(sector, id, submitted)) {
                        fail("seed=" + seed + ": a live read returned write " + id + " for " + model.describe(sector));
                        return;
                    }
                }
            } finally {
                trace.lock.unlock();
            }
        }

        private long event() {
            trace.lock.lock();
            try {
                return trace.tick();
            } finally {
                trace.lock.unlock();
            }
        }

        private void fail(String message) {
            trace.lock.lock();
            try {
                if (failure == null) {
                    failure = message;
                    trace.arm(false);
                }
            } finally {
                trace.lock.unlock();
            }
        }

        /** One power cut, with the world stopped: see the class comment. */
        private void check(long event, PowerTrace.Kind kind, boolean after, SplittableRandom random) {
            if (failure != null) {
                return;
            }
            String where = "seed=" + seed + " power cut " + trace.cutCount() + " at event " + event
                    + (after ? " after " : " before ") + kind;
            CrashImageRegion image = region.crashImage(random);
            disk.crashImage(random, imageDisk);
            model.advance();
            Boot how = trace.cutCount() % CUT_THE_BOOT_EVERY == CUT_THE_BOOT_EVERY / 2 ? Boot.CUT_THE_BOOT
                    : trace.cutCount() % DRAIN_CHECK_EVERY == 0 ? Boot.DRAIN : Boot.CHECK;
            try {
                String problem = boot(image, imageDisk, how, diskCopy);
                if (problem != null) {
                    fail(where + ": " + problem);
                }
            } catch (IOException | RuntimeException | AssertionError e) {
                fail(where + ": " + e);
            }
        }

        /**
         * A power cut during a boot that {@link Boot#CUT_THE_BOOT} traces: checked like any cut, on the boot's thread
         * that reached it, while the outer cut waits for the boot. Records a problem in {@link #bootFailure}.
         */
        private void checkBoot(long event, PowerTrace.Kind kind, boolean after, SplittableRandom random) {
            if (bootFailure != null) {
                return;
            }
            String where = "a cut during its replay, writeback and GC, at event " + event
                    + (after ? " after " : " before ") + kind;
            CrashImageRegion image = bootRegion.crashImage(random);
            bootDisk.crashImage(random, bootImageDisk);
            try {
                String problem = boot(image, bootImageDisk, Boot.INNER, bootCopy);
                if (problem != null) {
                    bootFailure = where + ": " + problem;
                }
            } catch (IOException | RuntimeException | AssertionError e) {
                bootFailure = where + ": " + e;
            }
        }

        /**
         * Checks the images of one cut (see the class comment), {@code buffer} a window-sized scratch buffer; returns
         * what is wrong, or null.
         */
        private String boot(CrashImageRegion image, MemoryEngine imageOnDisk, Boot how, MemorySegment buffer)
                throws IOException {
            long[] onDisk = ids(imageOnDisk, buffer);
            for (int s = 0; s < onDisk.length; s++) {
                if (!model.written(s, onDisk[s])) {
                    return "the backing disk alone holds write " + onDisk[s] + " in " + model.describe(s);
                }
            }
            boolean[] clean = cleanInLog(image, how != Boot.INNER);
            PmemRegion bootOn = image;
            IoEngine engine = new FilterEngine(imageOnDisk) {
                @Override
                public void close() {
                    // the next cut writes its own image over this disk
                }
            };
            PowerTrace bootTrace = null;
            if (how == Boot.CUT_THE_BOOT) {
                cutBoots++;
                bootTrace = new PowerTrace(seed * 1_000_003 + trace.cutCount(), BOOT_CHANCE, MAX_CUTS_PER_BOOT,
                        this::checkBoot);
                bootRegion = new TracedRegion(bootTrace, image);
                bootDisk = new TracedDisk(bootTrace, imageOnDisk);
                bootFailure = null;
                bootOn = bootRegion;
                engine = bootDisk;
                bootTrace.arm(true);
            }
            BackingDevice imageBacking = BackingDevice.start(engine);
            try {
                Pcache booted = Pcache.open(bootOn, imageBacking,
                        CacheHarness.quietOptions().withDataCrc(options.dataCrc()));
                try {
                    long[] read = readAll(booted, buffer);
                    for (int s = 0; s < read.length; s++) {
                        if (!model.allowed(s, read[s])) {
                            return "after replay the cache returns write " + read[s] + " for " + model.describe(s);
                        }
                        if (clean[s] && onDisk[s] != read[s]) {
                            return "the log says sector " + s + " is clean, the cache returns write " + read[s]
                                    + " but the backing disk holds " + onDisk[s] + "; " + model.describe(s);
                        }
                    }
                    if (how == Boot.DRAIN || how == Boot.CUT_THE_BOOT) {
                        drainChecks++;
                        booted.drain();
                        long[] drained = ids(engine, buffer);
                        for (int s = 0; s < read.length; s++) {
                            if (drained[s] != read[s]) {
                                return "after a drain the backing disk holds write " + drained[s] + " where the"
                                        + " cache returned " + read[s] + "; " + model.describe(s);
                            }
                        }
                    }
                    return how == Boot.CUT_THE_BOOT ? bootFailure : null;
                } finally {
                    booted.close();
                }
            } finally {
                imageBacking.stop();
                if (bootTrace != null) {
                    bootTrace.arm(false);
                    cutsInBoots += bootTrace.cutCount();
                    bootDisk.free();
                }
            }
        }

        /** Per sector: whether the newest live key the image's log holds for it is clean. */
        private boolean[] cleanInLog(CrashImageRegion image, boolean count) throws IOException {
            boolean[] clean = new boolean[(int) (DEVICE_SIZE / SECTOR)];
            boolean[] reused = new boolean[1];
            boolean[] fills = new boolean[1];
            CacheImage.inspect(image, DEVICE_SIZE).walk(kset -> {
                for (CacheImage.LoggedKey key : kset.keys()) {
                    if (key.stale()) {
                        continue;
                    }
                    reused[0] |= key.gen() > 0;
                    fills[0] |= kset.dirty() && key.clean();
                    boolean isClean = !kset.dirty() || key.clean();
                    for (long s = key.off() / SECTOR; s < (key.off() + key.len()) / SECTOR; s++) {
                        clean[(int) s] = isClean;
                    }
                }
            });
            if (count) {
                cutsWithReusedSegments += reused[0] ? 1 : 0;
                cutsWithFills += fills[0] ? 1 : 0;
            }
            return clean;
        }

        /** The write id of every sector of the window, read through {@code booted}; zero outside the window. */
        private static long[] readAll(Pcache booted, MemorySegment buffer) throws IOException {
            long[] ids = new long[(int) (DEVICE_SIZE / SECTOR)];
            int chunk = 1 << 20;
            MemorySegment buf = buffer.asSlice(0, chunk);
            for (long off = WINDOW_FROM; off < WINDOW_END; off += chunk) {
                booted.read(off, buf);
                idsOf(buf, off, ids);
            }
            return ids;
        }

        /** The write id of every sector of the window on {@code engine} alone; zero outside the window. */
        private static long[] ids(IoEngine engine, MemorySegment buffer) {
            long[] ids = new long[(int) (DEVICE_SIZE / SECTOR)];
            engine.read(WINDOW_FROM, buffer, error -> {
                if (error != null) {
                    throw new IllegalStateException(error);
                }
            });
            idsOf(buffer, WINDOW_FROM, ids);
            return ids;
        }

        private static void idsOf(MemorySegment buf, long deviceOffset, long[] ids) {
            for (int i = 0; i < buf.byteSize() / SECTOR; i++) {
                long at = (long) i * SECTOR;
                ids[(int) (deviceOffset / SECTOR) + i] = SectorPattern.idOfSampled(buf, at, deviceOffset + at);
            }
        }

        private static void await(CompletableFuture<Void> request) throws IOException {
            try {
                request.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
            } catch (InterruptedException | java.util.concurrent.TimeoutException e) {
                throw new IOException("request did not complete within " + WAIT, e);
            }
        }

        @Override
        public void close() {
            trace.arm(false);
            if (cache != null) {
                cache.close();
            }
            backing.stop();
            region.close();
            disk.free();
            imageDisk.close();
            bootImageDisk.close();
        }
    }
}
