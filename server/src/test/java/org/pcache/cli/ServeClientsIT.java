package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.nbd.ExternalTool;

/**
 * Real NBD clients against a real {@code pcache serve} with a backing file: each test starts the server on fresh
 * files (TCP on an ephemeral port and a unix socket) and skips, saying why, when its client is not installed.
 */
class ServeClientsIT {

    private static final long BACKING_SIZE = 64L << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("64M"));
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
        files.close();
    }

    /** Transport 0 is TCP, 1 the unix socket. */
    private String uri(int transport) {
        return server.uris().get(transport);
    }

    @Test
    void readyLineNamesBothUrisTheCacheTheBackingAndTheAdminEndpoint() {
        assertThat(server.uris()).hasSize(2);
        assertThat(server.uris().get(0)).matches("nbd://127\\.0\\.0\\.1:\\d+/");
        assertThat(server.uris().get(1)).isEqualTo("nbd+unix:///?socket=" + files.socket);
        assertThat(server.readyLine()).contains("(cache " + files.cache + " 512.0 MiB, backing " + files.backing
                + " 64.0 MiB, admin 127.0.0.1:");
        assertThat(server.admin()).matches("127\\.0\\.0\\.1:\\d+").isNotEqualTo("127.0.0.1:0");
    }

    @Test
    void nbdinfoJsonShowsSizeFlagsAndBlockSizes() throws Exception {
        ExternalTool.require("nbdinfo");
        String json = ExternalTool.run(TIMEOUT, "nbdinfo", "--json", uri(0)).assertSuccess().stdout();
        JsonNode export = new ObjectMapper().readTree(json).get("exports").get(0);
        assertThat(export.get("export-size").asLong()).isEqualTo(BACKING_SIZE);
        for (String flag : new String[] {"can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn",
                "can_cache"}) {
            assertThat(export.get(flag).asBoolean()).as(flag).isTrue();
        }
        assertThat(export.get("is_read_only").asBoolean()).isFalse();
        assertThat(export.get("block_size_minimum").asInt()).isEqualTo(1);
        assertThat(export.get("block_size_preferred").asInt()).isEqualTo(4096);
        assertThat(export.get("block_size_maximum").asInt()).isEqualTo(64 << 20);
    }

    @Test
    void qemuIoDataSurvivesACleanRestart() throws Exception {
        ExternalTool.require("qemu-io");
        String written = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", uri(1),
                "-c", "write -P 0x5a 1536 3584",
                "-c", "write -P 0x6b 1048064 66048",
                "-c", "write -P 0x7c 5242880 4194304",
                "-c", "read -P 0x5a 1536 3584",
                "-c", "read -P 0x6b 1048064 66048",
                "-c", "write -z 2048 1024",
                "-c", "read -P 0 2048 1024",
                "-c", "read -P 0x5a 3072 2048",
                "-c", "discard 6291456 65536",
                "-c", "flush").assertSuccess().stdout();
        assertThat(written).doesNotContain("Pattern verification failed").doesNotContain("error");

        assertThat(server.terminate()).as("exit status after SIGTERM").isZero();
        server = ServeProcess.start(dir, files.serve("64M"));

        String read = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", uri(0),
                "-c", "read -P 0x5a 1536 512",
                "-c", "read -P 0 2048 1024",
                "-c", "read -P 0x5a 3072 2048",
                "-c", "read -P 0x6b 1048064 66048",
                "-c", "read -P 0x7c 5242880 1048576",
                "-c", "read -P 0x7c 7340032 2097152",
                "-c", "read -P 0 0 1536").assertSuccess().stdout();
        assertThat(read).doesNotContain("Pattern verification failed").doesNotContain("error");
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void nbdcopyInAndOutIsByteIdentical(int transport) throws Exception {
        ExternalTool.require("nbdcopy");
        Path source = dir.resolve("source.img");
        Files.write(source, randomBytes(24 << 20, 17 + transport));
        ExternalTool.run(TIMEOUT, "nbdcopy", "--flush", source.toString(), uri(transport)).assertSuccess();
        Path copy = dir.resolve("copy.img");
        ExternalTool.run(TIMEOUT, "nbdcopy", uri(transport), copy.toString()).assertSuccess();
        byte[] expected = Files.readAllBytes(source);
        byte[] copied = Files.readAllBytes(copy);
        assertThat(copied.length).isEqualTo(BACKING_SIZE);
        assertThat(Arrays.mismatch(copied, 0, expected.length, expected, 0, expected.length)).isEqualTo(-1);
        assertThat(Arrays.mismatch(copied, expected.length, copied.length, new byte[copied.length - expected.length],
                0, copied.length - expected.length)).as("the rest of a fresh backing file reads as zeroes")
                .isEqualTo(-1);
    }

    @Test
    void qemuImgCompareFindsAConvertedImageIdentical() throws Exception {
        ExternalTool.require("qemu-img");
        Path source = dir.resolve("sparse.img");
        try (FileChannel file = FileChannel.open(source, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            file.write(ByteBuffer.wrap(randomBytes(3 << 20, 5)), 9 << 20);
            file.write(ByteBuffer.wrap(randomBytes(512, 6)), BACKING_SIZE - 512);
        }
        ExternalTool.run(TIMEOUT, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), uri(0))
                .assertSuccess();
        String compare = ExternalTool.run(TIMEOUT, "qemu-img", "compare", "-f", "raw", "-F", "raw",
                source.toString(), uri(1)).assertSuccess().stdout();
        assertThat(compare).contains("Images are identical");
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void fioRandomWritesVerifyWithCrc32c(int transport) throws Exception {
        ExternalTool.require("fio");
        String out = ExternalTool.run(TIMEOUT, "fio", "--name=verify", "--ioengine=nbd", "--uri=" + uri(transport),
                "--rw=randwrite", "--bs=4k", "--size=32m", "--iodepth=16", "--verify=crc32c", "--verify_fatal=1",
                "--verify_state_save=0", "--randseed=" + (42 + transport)).assertSuccess().stdout();
        assertThat(out).contains("err= 0");
    }

    private static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }
}
