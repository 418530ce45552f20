package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.Crc32c;
import org.pcache.pmem.KeyOnMedia;
import org.pcache.pmem.KsetOnMedia;

/**
 * {@code pcache check}, {@code dump} and {@code recover} on images a child {@code pcache serve} wrote: a clean one,
 * one with a flipped superblock byte, one with a key that breaks the rules under a valid kset CRC, and one left by a
 * server killed with -9 whose writeback never got through. Offline commands must never write the image, so each
 * test compares its checksum and modification time before and after.
 */
class OfflineCommandsIT {

    private static final int MIB = 1 << 20;
    /** Extents written as (offset, length, version); the third overwrites part of the first. */
    private static final long[][] EXTENTS = {{0, 8 * MIB, 1}, {20 * MIB, 6 * MIB, 2}, {2 * MIB, 3 * MIB, 3}};
    /** Region offset of the kset at log position 0:0 (logical segment 0 is physical segment 0 after a format). */
    private static final long FIRST_KSET = CacheDeviceLayout.segmentOffset(0) + CacheDeviceLayout.SEGMENT_DATA_OFFSET;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;
    private NbdkitProcess nbdkit;

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (nbdkit != null) {
            nbdkit.close();
        }
        files.close();
    }

    @Test
    void checkPassesACleanImageAndRefusesOneAServerRuns() throws Exception {
        writeImage();
        server = ServeProcess.start(dir, files.serve("64M"));
        ServeProcess.run(dir, "check", "--cache", files.cache.toString()).assertRefused(1, "is in use");
        ServeProcess.run(dir, "dump", "--cache", files.cache.toString()).assertRefused(1, "is in use");
        assertThat(server.terminate()).isZero();

        ImageState before = ImageState.of(files.cache);
        ServeProcess.Exit check = ServeProcess.run(dir, "check", "--cache", files.cache.toString(), "--backing-size",
                "64M");
        assertThat(check.status()).as("stderr: %s", check.stderr()).isZero();
        assertThat(check.stdout().lines().toList()).singleElement().asString().contains("clean");
        assertThat(ImageState.of(files.cache)).as("check never writes").isEqualTo(before);
    }

    @Test
    void checkReportsAFlippedSuperblockByteAsOneProblemLine() throws Exception {
        writeImage();
        try (RandomAccessFile cache = new RandomAccessFile(files.cache.toFile(), "rw")) {
            cache.seek(CacheDeviceLayout.SUPERBLOCK_OFFSET + 16); // seg_num: the superblock's CRC no longer matches
            cache.write(0x7f);
        }
        ImageState before = ImageState.of(files.cache);
        ServeProcess.Exit check = ServeProcess.run(dir, "check", "--cache", files.cache.toString());
        assertThat(check.status()).isEqualTo(3);
        assertThat(check.stdout().lines().toList()).singleElement().asString()
                .contains("corrupt superblock at offset 4096").contains("crc");
        assertThat(ImageState.of(files.cache)).as("check never writes").isEqualTo(before);
    }

    @Test
    void checkAndDumpReportAKeyThatBreaksTheRulesUnderAValidKsetCrc() throws Exception {
        writeImage();
        setFirstKeyLengthKeepingTheCrcValid(1000);
        ImageState before = ImageState.of(files.cache);

        ServeProcess.Exit check = ServeProcess.run(dir, "check", "--cache", files.cache.toString());
        assertThat(check.status()).isEqualTo(3);
        assertThat(check.stdout().lines().toList()).singleElement().asString()
                .contains("key 0 of kset at 0:0").contains("len expected a positive multiple of 512, found 1000");

        ServeProcess.Exit dump = ServeProcess.run(dir, "dump", "--cache", files.cache.toString());
        assertThat(dump.status()).isEqualTo(3);
        assertThat(dump.stdout()).contains("superblock ").contains("key_tail seg=0 off=0")
                .contains("error corrupt key 0 of kset at 0:0");
        assertThat(dump.messages()).singleElement().asString().startsWith("pcache: cache ").contains("len expected");
        ServeProcess.Exit json = ServeProcess.run(dir, "dump", "--cache", files.cache.toString(), "--json");
        assertThat(json.status()).isEqualTo(3);
        assertThat(new ObjectMapper().readTree(json.stdout()).get("error").asText()).contains("key 0 of kset at 0:0");
        assertThat(ImageState.of(files.cache)).as("neither writes").isEqualTo(before);
    }

    @Test
    void dumpPrintsEveryStructureOfAKnownImageAsTextAndJson() throws Exception {
        writeImage();
        ImageState before = ImageState.of(files.cache);

        ServeProcess.Exit text = ServeProcess.run(dir, "dump", "--cache", files.cache.toString());
        assertThat(text.status()).as("stderr: %s", text.stderr()).isZero();
        List<String> lines = text.stdout().lines().toList();
        assertThat(lines.get(0)).isEqualTo("superblock flags=0x0 seg_num=31");
        assertThat(lines.get(1)).startsWith("cache_info seg_id=0 n_segs=31 ").contains("init_done=true")
                .contains("gc_percent=70")
                .contains("data_crc=false");
        assertThat(lines.get(2)).isEqualTo("key_tail seg=0 off=0");
        assertThat(lines.get(3)).matches("dirty_tail seg=\\d+ off=\\d+");
        assertThat(lines.get(4)).startsWith("backing_identity file ");
        assertThat(lines.stream().filter(line -> line.startsWith("segment "))).hasSize(31);
        assertThat(lines).anyMatch(line -> line.matches("kset seg=0 off=0 keys=\\d+ dirty=(true|false)"));
        assertThat(lines.getLast()).matches("key_head seg=\\d+ off=\\d+");
        Set<Long> textOffsets = new HashSet<>();
        for (String line : lines) {
            if (line.startsWith("key off=")) {
                textOffsets.add(Long.parseLong(line.substring("key off=".length(), line.indexOf(' ', 8))));
            }
        }
        assertThat(textOffsets).containsAll(writtenOffsets());

        ServeProcess.Exit json = ServeProcess.run(dir, "dump", "--cache", files.cache.toString(), "--json");
        assertThat(json.status()).isZero();
        JsonNode dump = new ObjectMapper().readTree(json.stdout());
        assertThat(dump.get("superblock").get("seg_num").asInt()).isEqualTo(31);
        assertThat(dump.get("cache_info").get("gc_percent").asInt()).isEqualTo(70);
        assertThat(dump.get("key_tail").get("seg").asInt()).isZero();
        assertThat(dump.has("dirty_tail")).isTrue();
        assertThat(dump.get("segments")).hasSize(31);
        assertThat(dump.get("segments").get(1).get("physical_id").asInt()).isEqualTo(1);
        Set<Long> jsonOffsets = new HashSet<>();
        for (JsonNode kset : dump.get("ksets")) {
            assertThat(kset.has("pos") && kset.has("last") && kset.has("dirty")).isTrue();
            for (JsonNode key : kset.get("keys")) {
                assertThat(key.get("len").asInt()).isPositive();
                assertThat(key.has("seg_off") && key.has("gen") && key.has("data_crc") && key.has("stale")).isTrue();
                jsonOffsets.add(key.get("off").asLong());
            }
        }
        assertThat(jsonOffsets).isEqualTo(textOffsets);
        assertThat(dump.get("key_head").toString()).as("the same end of the log in both forms")
                .isEqualTo("{\"seg\":" + lines.getLast().replaceAll("key_head seg=(\\d+) off=(\\d+)", "$1,\"off\":$2")
                        + "}");
        assertThat(ImageState.of(files.cache)).as("dump never writes").isEqualTo(before);
    }

    @Test
    void recoverWritesEveryFlushedByteOfAServerKilledWithMinusNineOntoACopyOfTheBacking() throws Exception {
        try (RandomAccessFile backing = new RandomAccessFile(files.backing.toFile(), "rw")) {
            backing.setLength(64L * MIB);
        }
        // Every backing write fails: writeback retries and never gets anything through before the kill.
        nbdkit = NbdkitProcess.start(dir.resolve("nbdkit.log"), "file", files.backing.toString(), "--filter=error",
                "error-pwrite-rate=100%", "error-zero-rate=100%");
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", nbdkit.uri(), "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
        for (long[] extent : EXTENTS) {
            SectorData.writeAndFlush(server.uri(), extent[0], (int) extent[1], (int) extent[2]);
        }
        server.kill();
        nbdkit.close();
        nbdkit = null;
        Path copy = dir.resolve("backing-copy.img");
        Files.copy(files.backing, copy);
        assertThat(SectorData.readFile(copy, 0, 26 * MIB)).as("nothing was written back before the kill")
                .isEqualTo(new byte[26 * MIB]);

        ImageState before = ImageState.of(files.cache);
        ServeProcess.run(dir, "recover", "--cache", files.cache.toString(), "--backing",
                dir.resolve("missing.img").toString()).assertRefused(1, "does not exist");
        assertThat(Files.exists(dir.resolve("missing.img"))).isFalse();
        ServeProcess.Exit recover = ServeProcess.run(dir, "recover", "--cache", files.cache.toString(), "--backing",
                copy.toString());
        assertThat(recover.status()).as("stderr: %s", recover.stderr()).isZero();
        assertThat(recover.stderr()).isEmpty();
        assertThat(recover.stdout().lines().toList()).allMatch(line -> line.startsWith("recover: "))
                .last().asString().matches("recover: \\d+ ksets, \\d+ bytes written to .*");
        assertThat(SectorData.readFile(copy, 0, 26 * MIB)).as("what the client wrote and flushed")
                .isEqualTo(expectedImage());
        assertThat(ImageState.of(files.cache)).as("recover never writes the cache").isEqualTo(before);
    }

    /** A cache image holding {@link #EXTENTS}, flushed, left by a server stopped with SIGTERM. */
    private void writeImage() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M"));
        for (long[] extent : EXTENTS) {
            SectorData.writeAndFlush(server.uri(), extent[0], (int) extent[1], (int) extent[2]);
        }
        assertThat(server.terminate()).isZero();
        server = null;
    }

    /** Every 1 MiB piece the client wrote starts a key (a piece may be cut in two at a segment's end). */
    private static Set<Long> writtenOffsets() {
        Set<Long> offsets = new HashSet<>();
        for (long[] extent : EXTENTS) {
            for (long off = extent[0]; off < extent[0] + extent[1]; off += MIB) {
                offsets.add(off);
            }
        }
        return offsets;
    }

    private static byte[] expectedImage() {
        byte[] image = new byte[26 * MIB];
        for (long[] extent : EXTENTS) {
            byte[] data = SectorData.of(extent[0], (int) extent[1], (int) extent[2]);
            System.arraycopy(data, 0, image, (int) extent[0], data.length);
        }
        return image;
    }

    /** Rewrites key 0 of the kset at 0:0 with {@code len}, then its kset's CRC, so only the key's rule is broken. */
    private void setFirstKeyLengthKeepingTheCrcValid(int len) throws Exception {
        try (FileChannel cache = FileChannel.open(files.cache, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer header = ByteBuffer.allocate((int) KsetOnMedia.HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            cache.read(header, FIRST_KSET);
            assertThat(header.getLong((int) KsetOnMedia.MAGIC_OFFSET)).isEqualTo(KsetOnMedia.MAGIC);
            int size = KsetOnMedia.size(header.getInt((int) KsetOnMedia.KEY_NUM_OFFSET));
            ByteBuffer kset = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
            cache.read(kset, FIRST_KSET);
            kset.putInt((int) (KsetOnMedia.keyOffset(0) + KeyOnMedia.LEN_OFFSET), len);
            int crc = Crc32c.crc(MemorySegment.ofArray(kset.array()), Integer.BYTES, size - Integer.BYTES);
            kset.putInt((int) KsetOnMedia.CRC_OFFSET, crc);
            cache.write(kset.flip(), FIRST_KSET);
        }
    }

    /** A file's checksum and modification time: equal states mean nothing wrote to it. */
    private record ImageState(long crc, FileTime modified) {

        static ImageState of(Path file) throws Exception {
            CRC32C crc = new CRC32C();
            ByteBuffer buffer = ByteBuffer.allocateDirect(4 * MIB);
            try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                while (channel.read(buffer.clear()) > 0) {
                    crc.update(buffer.flip());
                }
            }
            return new ImageState(crc.getValue(), Files.getLastModifiedTime(file));
        }
    }
}
