package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class BlockSizeAdapterTest {

    private static final long SIZE = 80L << 20;

    private final ExecutorService executor = Executors.newFixedThreadPool(4);
    private final Arena arena = Arena.ofShared();
    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private final ContractExport export = new ContractExport(memory, executor);
    private final BlockSizeAdapter adapter = new BlockSizeAdapter(export);

    @AfterEach
    void close() {
        executor.shutdownNow();
        memory.close();
        arena.close();
    }

    @Test
    void readsAndWritesAnyByteRangeAsAByteArrayWould() throws Exception {
        long seed = System.nanoTime();
        Random random = new Random(seed);
        byte[] reference = new byte[(int) SIZE];
        for (int round = 0; round < 300; round++) {
            long length = switch (round % 4) {
                case 0 -> 1 + random.nextInt(3);
                case 1 -> 1 + random.nextInt(1500);
                case 2 -> 1 + random.nextInt(1 << 20);
                default -> round < 8 ? (64L << 20) - random.nextInt(1000) : 1 + random.nextInt(8192);
            };
            long offset = (long) (random.nextDouble() * (SIZE - length));
            MemorySegment data = Arena.ofAuto().allocate(length);
            for (long i = 0; i < length; i++) {
                data.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            }
            adapter.write(offset, data, Durability.BUFFERED).get(10, TimeUnit.SECONDS);
            MemorySegment.copy(data, 0, MemorySegment.ofArray(reference), offset, length);
            long readOffset = (long) (random.nextDouble() * (SIZE - length));
            MemorySegment back = Arena.ofAuto().allocate(length);
            adapter.read(readOffset, back).get(10, TimeUnit.SECONDS);
            assertThat(back.mismatch(MemorySegment.ofArray(reference).asSlice(readOffset, length)))
                    .as("read [%d, +%d) after write [%d, +%d), seed %d", readOffset, length, offset, length, seed)
                    .isEqualTo(-1);
        }
        assertThat(memory.contents().mismatch(MemorySegment.ofArray(reference))).as("seed %d", seed).isEqualTo(-1);
        assertThat(export.violations()).isEmpty();
    }

    @Test
    void concurrentPartialWritesIntoOneSectorLoseNoByte() throws Exception {
        // 1024 single-byte writes into two sectors at once; each read-modify-write completes on another thread, so
        // without the sector lock two of them read the same old sector and the later write drops the earlier byte.
        List<CompletableFuture<Void>> writes = new ArrayList<>();
        for (int i = 0; i < 1024; i++) {
            MemorySegment one = arena.allocate(1);
            one.set(ValueLayout.JAVA_BYTE, 0, (byte) (i % 255 + 1));
            writes.add(adapter.write(4096 + i, one, Durability.BUFFERED));
        }
        CompletableFuture.allOf(writes.toArray(CompletableFuture[]::new)).get(30, TimeUnit.SECONDS);
        for (int i = 0; i < 1024; i++) {
            assertThat(memory.contents().get(ValueLayout.JAVA_BYTE, 4096 + i)).as("byte %d", i)
                    .isEqualTo((byte) (i % 255 + 1));
        }
        assertThat(export.violations()).isEmpty();
    }

    @Test
    void partialWriteZeroesKeepsTheRestOfItsSectors() throws Exception {
        MemorySegment ones = arena.allocate(4096).fill((byte) 1);
        adapter.write(0, ones, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        adapter.writeZeroes(100, 1000, Durability.FUA).get(5, TimeUnit.SECONDS);
        for (int i = 0; i < 4096; i++) {
            assertThat(memory.contents().get(ValueLayout.JAVA_BYTE, i)).as("byte %d", i)
                    .isEqualTo((byte) (i >= 100 && i < 1100 ? 0 : 1));
        }
        assertThat(memory.fuaWrites()).as("both partial sectors written with FUA").isEqualTo(2);
        assertThat(export.violations()).isEmpty();
    }

    @Test
    void writeZeroesAndTrimOfFourGibibytesReachTheExportInParts() throws Exception {
        ContractExport big = new ContractExport(new ZeroExport(8L << 30), executor);
        BlockSizeAdapter bigAdapter = new BlockSizeAdapter(big);
        bigAdapter.writeZeroes(1, 0xffff_ffffL, Durability.BUFFERED).get(30, TimeUnit.SECONDS);
        bigAdapter.trim(1, 0xffff_ffffL, Durability.BUFFERED).get(30, TimeUnit.SECONDS);
        bigAdapter.cache(1, 0xffff_ffffL).get(30, TimeUnit.SECONDS);
        assertThat(big.violations()).isEmpty();
        assertThat(covered(big, "writeZeroes")).as("the whole sectors inside").isEqualTo((4L << 30) - 512);
        assertThat(covered(big, "write")).as("the partial head sector, read-modify-written").isEqualTo(512);
        assertThat(covered(big, "trim")).as("only whole sectors are discarded").isEqualTo((4L << 30) - 512);
        assertThat(covered(big, "cache")).as("widened to whole sectors").isEqualTo(4L << 30);
    }

    @Test
    void trimInsideOneSectorDiscardsNothing() throws Exception {
        adapter.trim(10, 100, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        assertThat(export.calls()).isEmpty();
    }

    @Test
    void blockStatusStartsAtTheByteAskedForAndEndsByTheLengthAsked() throws Exception {
        MemorySegment data = arena.allocate(MemoryExport.PAGE).fill((byte) 7);
        adapter.write(MemoryExport.PAGE, data, Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        List<NbdExport.Extent> extents = adapter.blockStatus(100, 5000).get(5, TimeUnit.SECONDS);
        assertThat(extents).containsExactly(
                new NbdExport.Extent(MemoryExport.PAGE - 100, NbdExport.Allocation.HOLE),
                new NbdExport.Extent(5000 - (MemoryExport.PAGE - 100), NbdExport.Allocation.DATA));
    }

    private static long covered(ContractExport export, String operation) {
        return export.calls().stream().filter(call -> call.operation().equals(operation))
                .mapToLong(ContractExport.Call::length).sum();
    }

    /** An export of zeroes that stores nothing, so a test can address gibibytes. */
    private static final class ZeroExport implements NbdExport {
        private final long size;

        ZeroExport(long size) {
            this.size = size;
        }

        @Override
        public String name() {
            return "zero";
        }

        @Override
        public String description() {
            return "";
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public Set<Capability> capabilities() {
            return Set.of(Capability.WRITE_ZEROES, Capability.TRIM);
        }

        @Override
        public CompletableFuture<Void> read(long offset, MemorySegment dst) {
            dst.fill((byte) 0);
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletableFuture<Void> flush() {
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
            return CompletableFuture.completedFuture(null);
        }
    }
}
