package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.lang.foreign.Arena;
import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Real NBD clients (libnbd tools, qemu, fio) against our server serving a {@link MemoryExport} over TCP and a
 * unix socket. Each test skips, saying why, when its program is missing.
 */
class NbdToolsIT {

    private static final long SIZE = 128L << 20;
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private MemoryExport memory;
    private NbdServer server;
    private String tcp;
    private String unix;

    @BeforeEach
    void start() throws Exception {
        memory = new MemoryExport("disk", SIZE);
        server = new NbdServer(memory, NbdServer.Options.defaults().withAddresses(
                new InetSocketAddress("127.0.0.1", 0), UnixDomainSocketAddress.of(dir.resolve("nbd.sock"))));
        server.start();
        tcp = NbdUri.of(server.boundAddresses().get(0), "disk").toString();
        unix = NbdUri.of(server.boundAddresses().get(1), "disk").toString();
    }

    @AfterEach
    void stop() {
        server.stop();
        memory.close();
    }

    private String uri(int transport) {
        return transport == 0 ? tcp : unix;
    }

    @Test
    void nbdinfoJsonDescribesTheExport() throws Exception {
        ExternalTool.require("nbdinfo");
        String json = ExternalTool.run(TIMEOUT, "nbdinfo", "--json", tcp).assertSuccess().stdout();
        JsonNode info = new ObjectMapper().readTree(json);
        assertThat(info.get("protocol").asText()).isEqualTo("newstyle-fixed");
        assertThat(info.get("structured").asBoolean()).isTrue();
        JsonNode export = info.get("exports").get(0);
        assertThat(export.get("export-name").asText()).isEqualTo("disk");
        assertThat(export.get("export-size").asLong()).isEqualTo(SIZE);
        assertThat(export.get("contexts").get(0).asText()).isEqualTo("base:allocation");
        for (String flag : new String[] {"can_multi_conn", "can_flush", "can_fua", "can_trim", "can_zero",
                "can_fast_zero", "can_df", "can_cache"}) {
            assertThat(export.get(flag).asBoolean()).as(flag).isTrue();
        }
        assertThat(export.get("is_read_only").asBoolean()).isFalse();
        assertThat(export.get("block_size_minimum").asInt()).isEqualTo(1);
        assertThat(export.get("block_size_maximum").asInt()).isEqualTo(64 << 20);
    }

    @Test
    void nbdinfoListShowsTheExportAndItsDescription() throws Exception {
        ExternalTool.require("nbdinfo");
        String out = ExternalTool.run(TIMEOUT, "nbdinfo", "--list", unix).assertSuccess().stdout();
        assertThat(out).contains("export=\"disk\"").contains("description: in-memory test export");
    }

    @Test
    void nbdinfoMapShowsWrittenDataBetweenHoles() throws Exception {
        ExternalTool.require("nbdinfo");
        try (NbdClient client = NbdClient.connect(NbdUri.parse(tcp)); Arena arena = Arena.ofConfined()) {
            client.write(4 << 20, arena.allocate(1 << 20).fill((byte) 1), Durability.BUFFERED).get(5, TimeUnit.SECONDS);
        }
        String map = ExternalTool.run(TIMEOUT, "nbdinfo", "--map", tcp).assertSuccess().stdout();
        assertThat(map.lines().map(line -> line.trim().replaceAll("\\s+", " ")).toList()).containsExactly(
                "0 4194304 3 hole,zero", "4194304 1048576 0 data", "5242880 128974848 3 hole,zero");
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void nbdcopyInAndOutIsByteIdentical(int transport) throws Exception {
        ExternalTool.require("nbdcopy");
        Path source = randomFile("source.img", 24 << 20, transport);
        ExternalTool.run(TIMEOUT, "nbdcopy", "--flush", source.toString(), uri(transport)).assertSuccess();
        Path copy = dir.resolve("copy.img");
        ExternalTool.run(TIMEOUT, "nbdcopy", uri(transport), copy.toString()).assertSuccess();
        byte[] expected = Files.readAllBytes(source);
        byte[] copied = Files.readAllBytes(copy);
        assertThat(copied.length).isEqualTo(SIZE);
        assertThat(Arrays.mismatch(copied, 0, expected.length, expected, 0, expected.length)).isEqualTo(-1);
        assertThat(memory.flushes()).isPositive();
    }

    @Test
    void qemuImgConvertCompareAndMapAgree() throws Exception {
        ExternalTool.require("qemu-img");
        Path source = dir.resolve("sparse.img");
        try (var file = java.nio.channels.FileChannel.open(source, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            file.write(java.nio.ByteBuffer.wrap(randomBytes(2 << 20, 7)), 8 << 20);
            file.truncate(SIZE);
            file.write(java.nio.ByteBuffer.wrap(new byte[] {0}), SIZE - 1);
        }
        ExternalTool.run(TIMEOUT, "qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", source.toString(), tcp)
                .assertSuccess();
        String compare = ExternalTool.run(TIMEOUT, "qemu-img", "compare", "-f", "raw", "-F", "raw",
                source.toString(), tcp).assertSuccess().stdout();
        assertThat(compare).contains("Images are identical");
        String map = ExternalTool.run(TIMEOUT, "qemu-img", "map", "--output=json", "-f", "raw", tcp)
                .assertSuccess().stdout();
        JsonNode extents = new ObjectMapper().readTree(map);
        JsonNode data = null;
        for (JsonNode extent : extents) {
            if (extent.get("data").asBoolean()) {
                data = extent;
            }
        }
        assertThat(data).isNotNull();
        assertThat(data.get("start").asLong()).isEqualTo(8 << 20);
        assertThat(data.get("length").asLong()).isEqualTo(2 << 20);
        Path back = dir.resolve("back.img");
        ExternalTool.run(TIMEOUT, "qemu-img", "convert", "-f", "raw", "-O", "raw", tcp, back.toString())
                .assertSuccess();
        assertThat(Files.mismatch(source, back)).isEqualTo(-1);
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void qemuIoPatternsAtOddAlignedOffsetsZeroesDiscardAndFlush(int transport) throws Exception {
        ExternalTool.require("qemu-io");
        String out = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", uri(transport),
                "-c", "write -P 0x5a 1536 3584",
                "-c", "write -P 0x6b 1048064 66048",
                "-c", "read -P 0x5a 1536 3584",
                "-c", "read -P 0x6b 1048064 66048",
                "-c", "write -z 2048 1024",
                "-c", "read -P 0 2048 1024",
                "-c", "read -P 0x5a 3072 2048",
                "-c", "discard 1048576 65536",
                "-c", "flush").assertSuccess().stdout();
        assertThat(out).doesNotContain("Pattern verification failed").doesNotContain("error");
        assertThat(memory.fuaWrites()).as("-t none sends plain writes").isZero();
        assertThat(memory.flushes()).isPositive();
        ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", uri(transport), "-c", "write -P 0x7c 512 512")
                .assertSuccess();
        assertThat(memory.fuaWrites()).as("default writethrough mode sends FUA").isPositive();
    }

    @ParameterizedTest(name = "transport {0}")
    @ValueSource(ints = {0, 1})
    void fioRandomWritesVerifyWithCrc32c(int transport) throws Exception {
        ExternalTool.require("fio");
        String fioUri = transport == 0 ? tcp : "nbd+unix:///disk?socket=" + dir.resolve("nbd.sock");
        String out = ExternalTool.run(TIMEOUT, "fio", "--name=verify", "--ioengine=nbd", "--uri=" + fioUri,
                "--rw=randwrite", "--bs=4k", "--size=32m", "--iodepth=16", "--verify=crc32c",
                "--verify_fatal=1", "--verify_state_save=0", "--randseed=" + (42 + transport)).assertSuccess().stdout();
        assertThat(out).contains("err= 0");
    }

    @Test
    void nbdshSeesStructuredRepliesBlockStatusAndErrorReplies() throws Exception {
        ExternalTool.require("nbdsh");
        String script = resource("nbdsh-structured.py");
        String out = ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "--base-allocation", "-u", tcp,
                "-c", "exec(open('" + script + "').read())").assertSuccess().stdout();
        assertThat(out).endsWith("OK\n");
    }

    @Test
    void nbdshNegotiatesSimpleRepliesExportNameAndListing() throws Exception {
        ExternalTool.require("nbdsh");
        String script = resource("nbdsh-negotiation.py");
        Map<String, String> environment = new java.util.HashMap<>(ExternalTool.SYSTEM_PYTHON);
        environment.put("NBD_URI", unix);
        String out = ExternalTool.run(TIMEOUT, environment, "nbdsh", "-c", "exec(open('" + script + "').read())")
                .assertSuccess().stdout();
        assertThat(out).endsWith("OK\n");
    }

    private String resource(String name) throws Exception {
        Path path = dir.resolve(name);
        try (var in = NbdToolsIT.class.getResourceAsStream(name)) {
            Files.copy(in, path);
        }
        return path.toString();
    }

    private Path randomFile(String name, int length, long seed) throws Exception {
        Path path = dir.resolve(name);
        Files.write(path, randomBytes(length, seed));
        return path;
    }

    private static byte[] randomBytes(int length, long seed) {
        byte[] bytes = new byte[length];
        new SplittableRandom(seed).nextBytes(bytes);
        return bytes;
    }
}
