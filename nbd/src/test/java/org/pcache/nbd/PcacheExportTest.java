package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.EngineOp;
import org.pcache.backing.FaultEngine;
import org.pcache.backing.GateEngine;
import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.CacheStatus;
import org.pcache.cache.Pcache;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CacheInfoOnMedia;
import org.pcache.pmem.MappedPmemRegion;

/** The cache as an NBD export, on a real cache: a tmpfs-mapped region and an in-memory backing device. */
class PcacheExportTest {

    private static final long BACKING_SIZE = 16L << 20;
    private static final long TIMEOUT_SECONDS = 10;

    private final Arena arena = Arena.ofShared();
    private Path regionFile;
    private MappedPmemRegion region;
    private BackingDevice backing;
    private Pcache cache;
    private PcacheExport export;

    private void open(IoEngine engine) throws Exception {
        regionFile = Files.createTempFile(Path.of("/dev/shm"), "pcache-export-", ".img");
        Files.delete(regionFile);
        region = MappedPmemRegion.open(regionFile, CacheDeviceLayout.MIN_SIZE);
        backing = BackingDevice.start(engine);
        cache = Pcache.open(region, backing, CacheOptions.defaults());
        export = new PcacheExport(cache, "disk", "a test cache");
    }

    @AfterEach
    void close() throws Exception {
        if (export != null) {
            cache.close();
            export.close();
            backing.stop();
            region.close();
            Files.deleteIfExists(regionFile);
        }
        arena.close();
    }

    @Test
    void offersEverythingButReadOnlyAtTheBackingSize() throws Exception {
        open(new MemoryEngine(BACKING_SIZE));
        assertThat(export.capabilities()).isEqualTo(EnumSet.of(NbdExport.Capability.FLUSH,
                NbdExport.Capability.FUA, NbdExport.Capability.TRIM, NbdExport.Capability.WRITE_ZEROES,
                NbdExport.Capability.FAST_ZERO, NbdExport.Capability.CACHE, NbdExport.Capability.MULTI_CONN));
        assertThat(export.size()).isEqualTo(BACKING_SIZE);
        assertThat(export.name()).isEqualTo("disk");
        assertThat(export.description()).isEqualTo("a test cache");
    }

    @Test
    void readOnlyRefusesEveryWriteTypeCommandWithEpermAndReadsStillFillTheCache() throws Exception {
        MemoryEngine engine = new MemoryEngine(BACKING_SIZE);
        open(engine);
        export.close();
        export = new PcacheExport(cache, "disk", "a read-only test cache", true);
        assertThat(export.capabilities()).containsExactlyInAnyOrder(NbdExport.Capability.READ_ONLY,
                NbdExport.Capability.FLUSH, NbdExport.Capability.CACHE, NbdExport.Capability.MULTI_CONN);
        NbdServer server = new NbdServer(export, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
        try (RawConnection client = RawConnection.negotiate(server.boundAddresses().getFirst())) {
            assertThat(client.transmissionFlags() & NbdProtocol.FLAG_READ_ONLY).isNotZero();
            assertThat(client.transmissionFlags() & (NbdProtocol.FLAG_SEND_TRIM | NbdProtocol.FLAG_SEND_WRITE_ZEROES
                    | NbdProtocol.FLAG_SEND_FUA)).as("write-type commands not advertised").isZero();
            client.write(1, 0, ByteBuffer.wrap(new byte[4096]).put(0, (byte) 1));
            client.request(NbdCommand.WRITE_ZEROES, 2, 0, 4096);
            client.request(NbdCommand.TRIM, 3, 0, 4096);
            client.request(NbdCommand.FLUSH, 4, 0, 0);
            client.request(NbdCommand.READ, 5, 4096, 8192);
            assertThat(client.reply(1)).isEqualTo(NbdError.EPERM.code());
            assertThat(client.reply(2)).isEqualTo(NbdError.EPERM.code());
            assertThat(client.reply(3)).isEqualTo(NbdError.EPERM.code());
            assertThat(client.reply(4)).as("FLUSH is allowed on a read-only export").isZero();
            assertThat(client.reply(5)).isZero();
            client.readFully(8192);
            long hits = cache.status().counters().readHitsFull();
            client.request(NbdCommand.READ, 6, 4096, 8192);
            assertThat(client.reply(6)).isZero();
            client.readFully(8192);
            assertThat(cache.status().counters().readHitsFull()).as("the first read filled the cache")
                    .isEqualTo(hits + 1);
        } finally {
            server.stop();
        }
        assertThat(cache.status().counters().writes()).as("nothing written").isZero();
    }

    @Test
    void writesZeroesTrimsAndFlushesReadBackThroughTheCache() throws Exception {
        open(new MemoryEngine(BACKING_SIZE));
        MemorySegment data = pattern(64 << 10, 1);
        await(export.write(4096, data, Durability.BUFFERED));
        await(export.write(1 << 20, data, Durability.FUA));
        await(export.writeZeroes(4096 + 8192, 4096, Durability.BUFFERED));
        await(export.trim(1 << 20, 4096, Durability.BUFFERED));
        await(export.flush());

        MemorySegment back = arena.allocate(64 << 10);
        await(export.read(4096, back));
        assertThat(back.asSlice(0, 8192).mismatch(data.asSlice(0, 8192))).isEqualTo(-1);
        assertThat(back.asSlice(8192, 4096).mismatch(arena.allocate(4096))).as("zeroed").isEqualTo(-1);
        assertThat(back.asSlice(12288).mismatch(data.asSlice(12288))).isEqualTo(-1);
        await(export.read(1 << 20, back));
        assertThat(back.asSlice(0, 4096).mismatch(arena.allocate(4096))).as("trimmed: zeroes").isEqualTo(-1);
        assertThat(back.asSlice(4096).mismatch(data.asSlice(4096))).isEqualTo(-1);
        assertThat(cache.status().counters().flushes()).isEqualTo(1);
    }

    @Test
    void discardIgnoreAcceptsTrimAndKeepsTheData() throws Exception {
        open(new MemoryEngine(BACKING_SIZE));
        export.close();
        export = new PcacheExport(cache, "disk", "a test cache", false, DiscardPolicy.IGNORE);
        assertThat(export.capabilities()).contains(NbdExport.Capability.TRIM);
        MemorySegment data = pattern(64 << 10, 1);
        await(export.write(1 << 20, data, Durability.BUFFERED));
        await(export.trim(1 << 20, 64 << 10, Durability.FUA));

        MemorySegment back = arena.allocate(64 << 10);
        await(export.read(1 << 20, back));
        assertThat(back.mismatch(data)).as("the data stays").isEqualTo(-1);
        cache.drain();
        assertThat(cache.status().cacheFlags() & CacheInfoOnMedia.FLAG_DATALESS_KEYS)
                .as("no discard record written").isZero();
    }

    @Test
    void cacheCommandPrefetchesSoLaterReadsHit() throws Exception {
        open(new MemoryEngine(BACKING_SIZE));
        long length = 3L * PrefetchBuffers.SIZE + 8192;
        await(export.cache(512, length));
        CacheStatus.Counters before = cache.status().counters();
        assertThat(before.bytesFromBacking()).isEqualTo(length);

        await(export.read(512, arena.allocate(length)));
        CacheStatus.Counters after = cache.status().counters();
        assertThat(after.bytesFromBacking()).as("nothing more from the backing device").isEqualTo(length);
        assertThat(after.readHitsFull() - before.readHitsFull()).isEqualTo(1);
    }

    @Test
    void cacheCommandWithEveryBufferBusyIsAcknowledgedWithoutReading() throws Exception {
        GateEngine gate = new GateEngine(new MemoryEngine(BACKING_SIZE), PrefetchBuffers.COUNT);
        open(gate);
        List<CompletableFuture<Void>> prefetches = new ArrayList<>();
        for (int i = 0; i < PrefetchBuffers.COUNT; i++) {
            prefetches.add(export.cache(i * (1L << 20), 4096));
        }
        assertThat(gate.awaitHeld(TIMEOUT_SECONDS, TimeUnit.SECONDS)).isTrue();

        CompletableFuture<Void> extra = export.cache(8L << 20, 4096);
        assertThat(extra).isCompleted();
        assertThat(gate.held()).as("the extra hint read nothing").isEqualTo(PrefetchBuffers.COUNT);
        assertThat(prefetches).allMatch(prefetch -> !prefetch.isDone());

        gate.open();
        for (CompletableFuture<Void> prefetch : prefetches) {
            await(prefetch);
        }
        await(export.cache(8L << 20, 4096));
        assertThat(cache.status().counters().bytesFromBacking()).as("buffers came back: the hint now reads")
                .isEqualTo((PrefetchBuffers.COUNT + 1) * 4096L);
    }

    @Test
    void aFailingBackingReadIsEioAndCachedDataIsStillServed() throws Exception {
        FaultEngine faults = new FaultEngine(new MemoryEngine(BACKING_SIZE));
        open(faults);
        MemorySegment data = pattern(8192, 2);
        await(export.write(0, data, Durability.BUFFERED));
        faults.failAll(EngineOp.READ);

        assertThatThrownBy(() -> await(export.read(1 << 20, arena.allocate(4096))))
                .isInstanceOf(ExecutionException.class)
                .satisfies(e -> assertThat(ErrorTranslation.of(e, 0)).isEqualTo(NbdError.EIO));
        assertThatThrownBy(() -> await(export.cache(1 << 20, 4096))).isInstanceOf(ExecutionException.class)
                .satisfies(e -> assertThat(ErrorTranslation.of(e, 0)).isEqualTo(NbdError.EIO));
        MemorySegment back = arena.allocate(8192);
        await(export.read(0, back));
        assertThat(back.mismatch(data)).isEqualTo(-1);
    }

    @Test
    void requestsAfterTheCacheClosedAreEshutdown() throws Exception {
        open(new MemoryEngine(BACKING_SIZE));
        cache.close();
        List<CompletableFuture<Void>> refused = List.of(export.read(0, arena.allocate(512)),
                export.write(0, arena.allocate(512), Durability.FUA), export.flush(),
                export.trim(0, 512, Durability.BUFFERED), export.writeZeroes(0, 512, Durability.BUFFERED),
                export.cache(0, 512));
        for (CompletableFuture<Void> request : refused) {
            assertThatThrownBy(() -> await(request)).isInstanceOf(ExecutionException.class)
                    .satisfies(e -> assertThat(ErrorTranslation.of(e, 0)).isEqualTo(NbdError.ESHUTDOWN));
        }
    }

    private MemorySegment pattern(long length, int seed) {
        MemorySegment segment = arena.allocate(length);
        for (long i = 0; i < length; i += Long.BYTES) {
            segment.set(ValueLayout.JAVA_LONG_UNALIGNED, i, i * 0x9E3779B97F4A7C15L + seed);
        }
        return segment;
    }

    private static void await(CompletableFuture<Void> future) throws Exception {
        future.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
    }
}
