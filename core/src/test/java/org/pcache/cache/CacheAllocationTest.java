package org.pcache.cache;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingExtent;
import org.pcache.backing.BackingExtent.Kind;

/** {@link CacheAllocation#merge}: cached ranges turn the backing device's holes into data; data stays data. */
class CacheAllocationTest {

    private static BackingExtent data(long length) {
        return new BackingExtent(length, Kind.DATA);
    }

    private static BackingExtent hole(long length) {
        return new BackingExtent(length, Kind.HOLE);
    }

    @Test
    void cachedRangesInsideAHoleBecomeDataAndNeighboursMerge() {
        List<BackingExtent> backing = List.of(hole(100), data(50), hole(100));
        List<long[]> cached = List.of(new long[] {1010, 1020}, new long[] {1090, 1160}, new long[] {1240, 1250});
        assertThat(CacheAllocation.merge(1000, backing, cached))
                .containsExactly(hole(10), data(10), hole(70), data(70), hole(80), data(10));
    }

    @Test
    void withNothingCachedTheBackingMapIsTheAnswer() {
        List<BackingExtent> backing = List.of(data(4096), hole(8192));
        assertThat(CacheAllocation.merge(0, backing, List.of())).isEqualTo(backing);
    }

    @Test
    void aCachedRangeCoveringEverythingIsOneDataRun() {
        assertThat(CacheAllocation.merge(0, List.of(hole(512), data(512), hole(512)),
                List.of(new long[] {0, 1536}))).containsExactly(data(1536));
    }
}
