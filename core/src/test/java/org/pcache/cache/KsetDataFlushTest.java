package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.pcache.backing.MemoryEngine;
import org.pcache.pmem.FaultyPmemRegion;
import org.pcache.pmem.TestRegions;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

/**
 * A kset close flushes its keys' data outside the log writer's lock: on a MAP_SYNC region that flush is the write-back
 * of every cache line of the data, the slow part of a close, and one stream's close must not hold up the others.
 */
class KsetDataFlushTest {

    private static final long STRETCH = 4L << 20;

    @Test
    void aSlowDataFlushOfOneStreamDoesNotHoldUpTheCloseOfAnother() throws Exception {
        FaultyPmemRegion region = new FaultyPmemRegion(TestRegions.crashSim(CacheHarness.CACHE_SIZE));
        CacheHarness harness = CacheHarness.on(region, new MemoryEngine(4 * STRETCH), CacheHarness.quietOptions());
        try {
            // Both data heads take their segment now, so the only flushes of the writes below are their closes'.
            harness.writePattern(0, 4096, 1, Durability.FUA);
            harness.writePattern(STRETCH, 4096, 2, Durability.FUA);
            FutureTask<Void> held = new FutureTask<>(() -> {
                harness.writePattern(0, 4096, 3, Durability.FUA);
                return null;
            });
            Thread slowWriter = new Thread(held, "slow-writer");
            region.holdFlushesOn(slowWriter);
            slowWriter.start();
            region.flushHeld().get(CacheHarness.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);

            MemorySegment other = MemorySegment.ofArray(new byte[4096]);
            SectorPattern.fill(other, STRETCH, 4);
            CompletableFuture<Void> otherStream = harness.cache.writeAsync(STRETCH, other, Durability.FUA);
            assertThatCode(() -> otherStream.get(10, TimeUnit.SECONDS))
                    .as("a FUA write to the other stream while the first close is in its data flush")
                    .doesNotThrowAnyException();

            assertThat(held).as("the first write's close is still in its data flush").isNotDone();
            region.releaseFlushes();
            held.get(CacheHarness.TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            harness.reopen();
            assertThat(harness.readIds(0, 4096)).containsOnly(3L);
            assertThat(harness.readIds(STRETCH, 4096)).containsOnly(4L);
        } finally {
            region.releaseFlushes();
            harness.close();
        }
    }
}
