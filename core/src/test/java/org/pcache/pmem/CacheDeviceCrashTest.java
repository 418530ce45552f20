package org.pcache.pmem;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Power cuts at every persistence point of format and of every record update, with the writes in flight: the device
 * always reopens, to the state before or after the operation (rule 3 for the replicated records, the format order for a
 * new device).
 */
@Timeout(120)
class CacheDeviceCrashTest {
    private static final long[] SEEDS = {1, 2, 3, 4};
    private static final CacheDevice.Options DEFAULTS = CacheDevice.Options.defaults();

    /**
     * Where the power goes: at the moment drain {@code drain} is called (before) or right after it completed. Cutting
     * "before" every drain of an operation, plus "after" its first and last drain, covers every persistence point with
     * the writes in flight.
     */
    private record Cut(boolean before, long drain) {
        static List<Cut> between(long first, long last) {
            List<Cut> cuts = new ArrayList<>();
            cuts.add(new Cut(false, first));
            for (long drain = first + 1; drain <= last; drain++) {
                cuts.add(new Cut(true, drain));
            }
            cuts.add(new Cut(false, last));
            return cuts;
        }

        void arm(CrashSimPmemRegion region) {
            if (before) {
                region.freezeBeforeDrain(drain);
            } else {
                region.freezeAtDrain(drain);
            }
        }

        /** Drains of the operation that were complete at the cut. */
        long durableDrains(long first) {
            return (before ? drain - 1 : drain) - first;
        }

        @Override
        public String toString() {
            return (before ? "cut before drain " : "cut after drain ") + drain;
        }
    }

    @FunctionalInterface
    private interface DeviceStep {
        void run(CacheDevice device) throws Exception;
    }

    @FunctionalInterface
    private interface RegionStep {
        void run(CrashSimPmemRegion region) throws Exception;
    }

    private static CacheDevice open(CrashSimPmemRegion region) throws Exception {
        return CacheDevice.open(region, DEFAULTS);
    }

    /** Asserts that {@code device} is exactly what a fresh format of a 512 MiB device gives. */
    private static void assertFreshlyFormatted(CacheDevice device, String context) {
        assertThat(device.cacheInfo()).as(context).isEqualTo(new CacheInfo(0, 31, false, true, 0, 70, 0));
        assertThat(device.keyTail()).as(context).isEqualTo(new CachePos(0, 0));
        assertThat(device.dirtyTail()).as(context).isEqualTo(new CachePos(0, 0));
        for (int seg = 0; seg < device.segmentCount(); seg++) {
            assertThat(device.segmentGen(seg)).as("%s segment %d", context, seg).isZero();
            assertThat(device.physicalSegmentId(seg)).as(context).isEqualTo(seg);
        }
    }

    /**
     * Cuts the power at every drain of a format with {@code options} of the image {@code before} leaves, and checks
     * that the device reopened without the format option is freshly formatted, or, with {@code oldCacheBeforeStart}
     * and none of the format's drains durable, still the cache {@link #useACache} left.
     */
    private void cutAtEveryDrainOfFormat(CacheDevice.Options options, boolean oldCacheBeforeStart, RegionStep before)
            throws Exception {
        long first;
        long last;
        try (CrashSimPmemRegion dry = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE)) {
            before.run(dry);
            first = dry.drainCount();
            CacheDevice.open(dry, options);
            last = dry.drainCount();
        }
        assertThat(last - first).as("drains of a format").isGreaterThan(90);
        for (Cut cut : Cut.between(first, last)) {
            for (long seed : SEEDS) {
                String context = cut + " of drains " + first + ".." + last + ", seed " + seed;
                try (CrashSimPmemRegion region = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE)) {
                    before.run(region);
                    cut.arm(region);
                    CacheDevice.open(region, options);
                    region.powerCut(seed);

                    CacheDevice reopened = open(region);

                    if (oldCacheBeforeStart && cut.durableDrains(first) == 0 && !reopened.formatted()
                            && reopened.cacheInfo().gcPercent() == 20) {
                        assertThat(reopened.keyTail()).as(context).isEqualTo(new CachePos(9, 800));
                        continue;
                    }
                    if (cut.durableDrains(first) == last - first) {
                        assertThat(reopened.formatted()).as(context).isFalse();
                    }
                    assertFreshlyFormatted(reopened, context);
                    CacheDevice again = open(region);
                    assertThat(again.formatted()).as(context).isFalse();
                    assertFreshlyFormatted(again, context);
                }
            }
        }
    }

    @Test
    void powerCutAtEveryDrainOfFormattingABlankDevice() throws Exception {
        cutAtEveryDrainOfFormat(DEFAULTS, false, region -> { });
    }

    /** A used cache: every record rewritten at least once. */
    private static void useACache(CrashSimPmemRegion region) throws Exception {
        CacheDevice device = open(region);
        device.writeCacheInfo(device.cacheInfo().withGcPercent(20));
        device.writeKeyTail(new CachePos(9, 800));
        device.writeDirtyTail(new CachePos(10, 808));
        for (int seg = 0; seg < device.segmentCount(); seg++) {
            device.writeSegmentGen(seg, seg + 100);
        }
    }

    @Test
    void powerCutAtEveryDrainOfFormattingOverAnOldCache() throws Exception {
        cutAtEveryDrainOfFormat(DEFAULTS, false, region -> {
            useACache(region);
            // Zeroing the superblock forces a re-format; everything else of the old cache is still there.
            region.zero(CacheDeviceLayout.SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE);
            region.persist(CacheDeviceLayout.SUPERBLOCK_OFFSET, SuperblockOnMedia.SIZE);
        });
    }

    @Test
    void powerCutAtEveryDrainOfAnExplicitFormatOverAValidCacheFinishesTheFormatOnReopen() throws Exception {
        CacheDevice.Options always = new CacheDevice.Options(false, 0, CacheDevice.GC_PERCENT_DEFAULT,
                CacheFormat.ALWAYS);
        cutAtEveryDrainOfFormat(always, true, CacheDeviceCrashTest::useACache);
    }

    /**
     * Runs {@code update} on a formatted device after 0 .. {@code maxPriorWrites} rounds of it (so the update lands in
     * either slot), cutting the power around every drain it performs with several seeds; {@code value} reads the
     * updated state from the reopened device, which must be {@code values}[j] right after the update's j-th drain and
     * one of {@code values}[j] or {@code values}[j + 1] while the next write is in flight.
     */
    private <T> void cutAtEveryDrainOf(int maxPriorWrites, Function<Integer, DeviceStep> update,
                                       Function<CacheDevice, T> value, Function<Integer, List<T>> values)
            throws Exception {
        for (int priorWrites = 0; priorWrites <= maxPriorWrites; priorWrites++) {
            long first;
            long last;
            try (CrashSimPmemRegion dry = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE)) {
                CacheDevice device = open(dry);
                for (int round = 0; round < priorWrites; round++) {
                    update.apply(round).run(device);
                }
                first = dry.drainCount();
                update.apply(priorWrites).run(device);
                last = dry.drainCount();
            }
            List<T> expected = values.apply(priorWrites);
            assertThat((long) expected.size() - 1).as("one drain per written value").isEqualTo(last - first);
            for (Cut cut : Cut.between(first, last)) {
                for (long seed : SEEDS) {
                    try (CrashSimPmemRegion region = new CrashSimPmemRegion(CacheDeviceLayout.MIN_SIZE)) {
                        CacheDevice device = open(region);
                        for (int round = 0; round < priorWrites; round++) {
                            update.apply(round).run(device);
                        }
                        cut.arm(region);
                        update.apply(priorWrites).run(device);
                        region.powerCut(seed);

                        T found = value.apply(open(region));

                        int durable = (int) cut.durableDrains(first);
                        List<T> allowed = cut.before() ? expected.subList(durable, durable + 2)
                                : expected.subList(durable, durable + 1);
                        assertThat(found).as("prior writes %d, %s of drains %d..%d, seed %d", priorWrites, cut, first,
                                last, seed).isIn(allowed);
                    }
                }
            }
        }
    }

    @Test
    void powerCutDuringACacheInfoUpdateLeavesTheOldOrTheNewOne() throws Exception {
        cutAtEveryDrainOf(2,
                round -> device -> device.writeCacheInfo(device.cacheInfo().withGcPercent(10 + round)),
                device -> device.cacheInfo().gcPercent(),
                round -> List.of(round == 0 ? 70 : 10 + round - 1, 10 + round));
    }

    @Test
    void powerCutDuringAKeyTailUpdateLeavesTheOldOrTheNewOne() throws Exception {
        cutAtEveryDrainOf(2,
                round -> device -> device.writeKeyTail(new CachePos(round + 1, 4096 * (round + 1))),
                CacheDevice::keyTail,
                round -> List.of(round == 0 ? new CachePos(0, 0) : new CachePos(round, 4096 * round),
                        new CachePos(round + 1, 4096 * (round + 1))));
    }

    @Test
    void powerCutDuringADirtyTailUpdateLeavesTheOldOrTheNewOne() throws Exception {
        cutAtEveryDrainOf(2,
                round -> device -> device.writeDirtyTail(new CachePos(30 - round, 8 * round + 24)),
                CacheDevice::dirtyTail,
                round -> List.of(round == 0 ? new CachePos(0, 0) : new CachePos(31 - round, 8 * round + 16),
                        new CachePos(30 - round, 8 * round + 24)));
    }

    @Test
    void powerCutDuringASegmentGenUpdateLeavesTheOldOrTheNewOne() throws Exception {
        cutAtEveryDrainOf(2,
                round -> device -> device.writeSegmentGen(17, round + 1),
                device -> device.segmentGen(17),
                round -> List.of((long) round, (long) round + 1));
    }

    @Test
    void powerCutDuringASeriesOfTailUpdatesLeavesAPrefixOfTheSeries() throws Exception {
        List<CachePos> series = List.of(new CachePos(0, 0), new CachePos(0, 104), new CachePos(0, 208),
                new CachePos(1, 0), new CachePos(1, 24), new CachePos(2, 0));
        cutAtEveryDrainOf(0,
                round -> device -> {
                    for (CachePos pos : series.subList(1, series.size())) {
                        device.writeKeyTail(pos);
                    }
                },
                CacheDevice::keyTail,
                round -> series);
    }
}
