package org.pcache.cache;

import java.util.stream.LongStream;

/**
 * Seeds of the seeded-randomness suites. By default the fixed seeds the test names, which every build runs; with
 * {@code -Dpcache.soak.seeds=N} instead N consecutive seeds from {@code -Dpcache.soak.first} (default 1000), for a
 * long soak: {@code mvn test -Dtest='PcacheCrashTest,WritebackCrashTest,PcacheModelTest' -Dpcache.soak.seeds=500
 * -Dpcache.soak.first=5000}. Every failure message names its seed, which reruns it.
 */
final class SoakSeeds {

    static final String COUNT_PROPERTY = "pcache.soak.seeds";
    static final String FIRST_PROPERTY = "pcache.soak.first";

    private SoakSeeds() {
    }

    /** {@code fixed}, or the soak's seeds when a soak was asked for. */
    static LongStream or(long... fixed) {
        return soaking() ? soak() : LongStream.of(fixed);
    }

    static boolean soaking() {
        return Long.getLong(COUNT_PROPERTY, 0) > 0;
    }

    /** The soak's seeds; call only when {@link #soaking}. */
    static LongStream soak() {
        long first = Long.getLong(FIRST_PROPERTY, 1000);
        return LongStream.range(first, first + Long.getLong(COUNT_PROPERTY, 0));
    }
}
