package org.pcache.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.backing.BackingExtent;
import org.pcache.backing.FileEngine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Write-zeroes and discards in front of a real file (in a temporary directory on the machine's disk): a 1 GiB
 * write-zeroes costs no data segment, reads back as zeroes before and after a reopen, and reaches the file as zeroes;
 * a discard reaches it as a punched hole, which SEEK_HOLE (the file engine's allocation map) shows.
 */
class DatalessFileBackingTest {

    private static final long MIB = 1L << 20;
    private static final long GIB = 1L << 30;
    /** Where the file holds data before the test: the first, a middle and the last MiB of the zeroed GiB. */
    private static final long[] DATA_AT = {0, 512 * MIB, GIB - MIB};

    @TempDir
    Path dir;

    @Test
    void aGibibyteOfZeroesTakesNoCacheSpaceReadsZeroesAndReachesTheFile() throws Exception {
        Path file = fileWithData(GIB + 8 * MIB);
        try (CacheHarness harness = CacheHarness.mapped(FileEngine.open(file, FileEngine.Options.DEFAULT),
                CacheHarness.quietOptions())) {
            CacheStatus before = harness.cache.status();

            CacheHarness.await(harness.cache.writeZeroesAsync(0, GIB, Durability.FUA));

            CacheStatus after = harness.cache.status();
            assertThat(after.segsUsed()).as("segments used").isEqualTo(before.segsUsed());
            assertThat(after.keyHead().seg()).as("the log stays in its segment").isEqualTo(before.keyHead().seg());
            assertThat(after.keyHead().off() - before.keyHead().off()).as("log bytes for 1 GiB of zeroes")
                    .isLessThan(16 * 1024);
            assertZeroesThroughTheCache(harness, "live");

            harness.reopen();
            assertZeroesThroughTheCache(harness, "replayed");

            harness.cache.drain();
        }
        for (long at : DATA_AT) {
            assertThat(readFile(file, at, (int) MIB)).as("file at " + at).isEqualTo(new byte[(int) MIB]);
        }
        assertThat(readFile(file, GIB, (int) MIB)).as("file past the zeroes").isEqualTo(pattern((int) MIB));
    }

    @Test
    void aDiscardPunchesAHoleInTheFileThatSeekHoleShows() throws Exception {
        Path file = fileWithData(16 * MIB);
        try (CacheHarness harness = CacheHarness.mapped(FileEngine.open(file, FileEngine.Options.DEFAULT),
                CacheHarness.quietOptions())) {
            assertThat(allocation(harness, 0, 16 * MIB)).as("before").containsExactly(data(16 * MIB));

            CacheHarness.await(harness.cache.discardAsync(4 * MIB, 8 * MIB));
            harness.cache.drain();

            assertThat(allocation(harness, 0, 16 * MIB)).as("after the discard was written back")
                    .containsExactly(data(4 * MIB), new BackingExtent(8 * MIB, BackingExtent.Kind.HOLE),
                            data(4 * MIB));
            assertThat(harness.readIds(4 * MIB, (int) (8 * MIB))).containsOnly(SectorPattern.ZERO);
        }
        assertThat(readFile(file, 4 * MIB, (int) MIB)).isEqualTo(new byte[(int) MIB]);
    }

    private static BackingExtent data(long length) {
        return new BackingExtent(length, BackingExtent.Kind.DATA);
    }

    private static List<BackingExtent> allocation(CacheHarness harness, long offset, long length) throws Exception {
        List<BackingExtent> all = new ArrayList<>();
        long at = offset;
        while (at < offset + length) {
            CompletableFuture<List<BackingExtent>> answer = new CompletableFuture<>();
            harness.backing.allocation(at, offset + length - at, (extents, error) -> {
                if (error != null) {
                    answer.completeExceptionally(error);
                } else {
                    answer.complete(extents);
                }
            });
            for (BackingExtent extent : answer.get(30, TimeUnit.SECONDS)) {
                if (!all.isEmpty() && all.getLast().kind() == extent.kind()) {
                    all.set(all.size() - 1, new BackingExtent(all.getLast().length() + extent.length(),
                            extent.kind()));
                } else {
                    all.add(extent);
                }
                at += extent.length();
            }
        }
        return all;
    }

    private static void assertZeroesThroughTheCache(CacheHarness harness, String what) throws IOException {
        for (long at : DATA_AT) {
            assertThat(harness.readIds(at, (int) MIB)).as(what + " at " + at).containsOnly(SectorPattern.ZERO);
        }
    }

    /** A sparse file of {@code size} bytes holding a non-zero MiB at each of {@link #DATA_AT} and at 1 GiB. */
    private Path fileWithData(long size) throws IOException {
        Path file = dir.resolve("backing.img");
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            channel.truncate(size);
            byte[] pattern = pattern((int) MIB);
            for (long at = 0; at < size; at += MIB) {
                long offset = at;
                boolean listed = at == GIB || Arrays.stream(DATA_AT).anyMatch(d -> d == offset);
                if (listed || size <= 16 * MIB) {
                    channel.write(ByteBuffer.wrap(pattern), at);
                }
            }
            channel.force(true);
        }
        return file;
    }

    private static byte[] pattern(int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = (byte) (i % 251 + 1);
        }
        return bytes;
    }

    private static byte[] readFile(Path file, long at, int length) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(length);
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            while (buf.hasRemaining()) {
                if (channel.read(buf, at + buf.position()) < 0) {
                    break;
                }
            }
        }
        assertThat(Files.size(file)).isGreaterThanOrEqualTo(at + length);
        return buf.array();
    }
}
