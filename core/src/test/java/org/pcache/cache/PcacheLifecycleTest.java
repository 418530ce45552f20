package org.pcache.cache;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * A closed cache refuses every request with {@link CacheClosedException}: asynchronous calls return a future already
 * failed with it (they never throw), blocking calls throw it, and a second close returns at once.
 */
class PcacheLifecycleTest {

    private static final long BACKING_SIZE = 1L << 20;

    @Test
    void aClosedCacheFailsEveryRequestWithCacheClosedException() throws Exception {
        try (CacheHarness harness = CacheHarness.mapped(BACKING_SIZE, CacheHarness.quietOptions())) {
            Pcache cache = harness.cache;
            MemorySegment buffer = MemorySegment.ofArray(new byte[4096]);
            cache.write(0, buffer, Durability.BUFFERED);
            cache.close();

            List<CompletableFuture<Void>> refused = List.of(cache.readAsync(0, buffer),
                    cache.writeAsync(0, buffer, Durability.FUA), cache.writeZeroesAsync(0, 4096, Durability.BUFFERED),
                    cache.discardAsync(0, 4096), cache.flushAsync(), cache.drainAsync());
            assertThat(refused).allSatisfy(future -> {
                assertThat(future.state()).isEqualTo(Future.State.FAILED);
                assertThat(future.exceptionNow()).isInstanceOf(CacheClosedException.class)
                        .hasMessage("cache is closed");
            });
            assertThatThrownBy(() -> cache.read(0, buffer)).isInstanceOf(CacheClosedException.class);
            assertThatThrownBy(cache::flush).isInstanceOf(CacheClosedException.class);
            assertThatThrownBy(() -> cache.setGcPercent(10)).isInstanceOf(CacheClosedException.class);
            cache.close();
            assertThat(cache.status().gcPercent()).as("status still answers, and nothing was written")
                    .isEqualTo(CacheOptions.GC_PERCENT_DEFAULT);
        }
    }

    @Test
    void cacheModeIsDmPcachesFourBitValueWithPassThroughAtAValueTheKernelDoesNotUse() {
        assertThat(CacheMode.values()).extracting(CacheMode::onMedia).containsExactly(0, 1, 2, 3, 15);
        for (CacheMode mode : CacheMode.values()) {
            assertThat(CacheMode.fromOnMedia(mode.onMedia())).isEqualTo(mode);
            assertThat(CacheMode.parse(mode.label().toUpperCase())).isEqualTo(mode);
        }
        assertThatThrownBy(() -> CacheMode.fromOnMedia(4)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("cache mode 4");
        assertThatThrownBy(() -> CacheMode.parse("writeback2")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("writethrough");
    }
}
