package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * The cache modes end to end, with the real jar and real clients: where the data is afterwards (the backing file read
 * directly), and the online switch through {@code pcache message mode}.
 */
class ServeModesIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final int MIB = 1 << 20;

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void setUp() throws Exception {
        ExternalTool.require("nbdsh");
        ExternalTool.require("nbdcopy");
        files = new ServeFiles(dir);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (server != null) {
            server.close();
        }
        if (files != null) {
            files.close();
        }
    }

    @Test
    void writeThroughAfterKillNineAndWithTheCacheFileDeletedTheBackingAloneHoldsEveryAcknowledgedWrite()
            throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--mode", "writethrough"));
        byte[] data = randomBytes(16 * MIB, 1);
        Path source = dir.resolve("data.bin");
        Files.write(source, data);
        String script = String.join("\n",
                "d = open('" + source + "', 'rb').read()",
                "for i in range(0, len(d), 1 << 20):",
                "    h.pwrite(d[i:i + (1 << 20)], 4096 + i)",
                "print('written')");
        assertThat(ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", script)
                .assertSuccess().stdout()).contains("written");
        JsonNode status = status();
        assertThat(status.get("cache_mode").asText()).isEqualTo("writethrough");
        assertThat(status.get("dirty_bytes").asLong()).as("the cached copies are clean").isZero();

        server.kill();
        server = null;
        Files.delete(files.cache);
        assertThat(backing(4096, data.length)).as("the backing file alone").isEqualTo(data);
    }

    @Test
    void writeAroundPutsA64MiBSequentialWriteOnTheBackingAtOnceAndCachesNoneOfIt() throws Exception {
        server = ServeProcess.start(dir, files.serve("128M", "--mode", "writearound"));
        int segsUsed = status().get("segs_used").asInt();
        byte[] data = randomBytes(64 * MIB, 2);
        Path source = dir.resolve("data.bin");
        Files.write(source, data);
        Path image = dir.resolve("image.bin");
        Files.write(image, Arrays.copyOf(data, 128 * MIB));
        ExternalTool.run(TIMEOUT, "nbdcopy", image.toString(), server.uri()).assertSuccess();

        assertThat(backing(0, data.length)).as("on the backing file while the server runs").isEqualTo(data);
        JsonNode status = status();
        assertThat(status.get("segs_used").asInt()).as("nothing cached").isEqualTo(segsUsed);
        assertThat(status.get("dirty_bytes").asLong()).isZero();
        assertThat(status.get("bypass").get("mode_bytes").asLong()).isGreaterThanOrEqualTo(64L * MIB);
    }

    @Test
    void passThroughCachesNothingWrittenOrRead() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M", "--mode", "passthrough"));
        int segsUsed = status().get("segs_used").asInt();
        String script = String.join("\n",
                "h.pwrite(b'\\x5a' * (4 << 20), 1 << 20)",
                "for i in range(3):",
                "    assert h.pread(8 << 20, 0)[1 << 20:5 << 20] == b'\\x5a' * (4 << 20)",
                "print('ok')");
        assertThat(ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", script)
                .assertSuccess().stdout()).contains("ok");
        JsonNode status = status();
        assertThat(status.get("segs_used").asInt()).isEqualTo(segsUsed);
        assertThat(status.get("miss_fills").asLong()).isZero();
        assertThat(status.get("read_hits_full").asLong()).isZero();
        assertThat(backing(MIB, 4 * MIB)).containsOnly((byte) 0x5a);
    }

    @Test
    void messageModeSwitchesOnlinePersistsAndDirtyDataStaysReadableAndIsWrittenBack() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M"));
        String write = "h.pwrite(b'\\x11' * (1 << 20), 0)\nh.flush()\nprint('ok')";
        assertThat(ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", write)
                .assertSuccess().stdout()).contains("ok");

        ServeProcess.Exit switched = ServeProcess.run(dir, "message", "--admin", server.admin(), "mode",
                "writearound");
        assertThat(switched.status()).as("stderr: %s", switched.stderr()).isZero();
        assertThat(status().get("cache_mode").asText()).isEqualTo("writearound");
        ServeProcess.Exit refused = ServeProcess.run(dir, "message", "--admin", server.admin(), "mode", "fast");
        assertThat(refused.status()).isEqualTo(2);
        assertThat(refused.stderr()).contains("writethrough");

        String mixed = String.join("\n",
                "h.pwrite(b'\\x22' * (1 << 20), 512 << 10)",
                "h.pwrite(b'\\x33' * (1 << 20), 8 << 20)",
                "h.flush()",
                "d = h.pread(2 << 20, 0)",
                "assert d[:512 << 10] == b'\\x11' * (512 << 10)",
                "assert d[512 << 10:(3 << 19)] == b'\\x22' * (1 << 20)",
                "print('ok')");
        assertThat(ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", mixed)
                .assertSuccess().stdout()).contains("ok");
        assertThat(backing(8 * MIB, MIB)).as("the write around the cache").containsOnly((byte) 0x33);
        assertThat(status().get("bypass").get("cached_instead").asLong()).as("the write over dirty data")
                .isEqualTo(1);

        assertThat(server.terminate()).isZero();
        server = ServeProcess.start(dir, files.serve("64M"));
        assertThat(status().get("cache_mode").asText()).as("persisted").isEqualTo("writearound");
        ServeProcess.Exit drained = ServeProcess.run(dir, "drain", "--admin", server.admin());
        assertThat(drained.status()).as("stderr: %s", drained.stderr()).isZero();
        byte[] expected = new byte[3 * MIB / 2];
        Arrays.fill(expected, 0, MIB / 2, (byte) 0x11);
        Arrays.fill(expected, MIB / 2, expected.length, (byte) 0x22);
        assertThat(backing(0, expected.length)).as("written back in order, newest last").isEqualTo(expected);
    }

    private JsonNode status() throws Exception {
        ServeProcess.Exit json = ServeProcess.run(dir, "status", "--admin", server.admin(), "--json");
        assertThat(json.status()).as("stderr: %s", json.stderr()).isZero();
        return new ObjectMapper().readTree(json.stdout());
    }

    private byte[] backing(long offset, int length) throws Exception {
        try (var channel = java.nio.channels.FileChannel.open(files.backing)) {
            java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(length);
            while (buf.hasRemaining() && channel.read(buf, offset + buf.position()) >= 0) {
                // read until full
            }
            return buf.array();
        }
    }

    private static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new Random(seed).nextBytes(bytes);
        return bytes;
    }
}
