package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * {@code pcache serve --read-only} with real clients: data written before is served, every write-type command is
 * refused with EPERM by the server itself (nbdsh with libnbd's client-side checks off), FLUSH works, reads still
 * fill the cache, and qemu-io opens the export read-only only.
 */
class ServeReadOnlyIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void writeThenServeReadOnly() throws Exception {
        ExternalTool.require("qemu-io");
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("16M"));
        ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uri(),
                "-c", "write -P 0x5a 0 1M", "-c", "flush").assertSuccess();
        assertThat(server.terminate()).isZero();
        server = ServeProcess.start(dir, files.serve("16M", "--read-only"));
    }

    @AfterEach
    void stop() throws Exception {
        server.close();
        files.close();
    }

    @Test
    void readyLineSaysReadOnlyAndQemuIoReadsButCannotWrite() throws Exception {
        assertThat(server.readyLine()).contains(", read-only, admin ");
        ExternalTool.Result readWrite = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", server.uri(),
                "-c", "write -P 0x11 0 4096");
        assertThat(readWrite.exit()).as("a read-write open of a read-only export").isNotZero();
        assertThat(readWrite.stderr() + readWrite.stdout()).contains("Permission denied");
        String out = ExternalTool.run(TIMEOUT, "qemu-io", "-r", "-f", "raw", server.uris().get(1),
                "-c", "read -P 0x5a 0 1M", "-c", "read -P 0 1M 1M").assertSuccess().stdout();
        assertThat(out).doesNotContain("Pattern verification failed");
    }

    @Test
    void everyWriteTypeCommandIsEpermFlushWorksAndReadsFillTheCache() throws Exception {
        ExternalTool.require("nbdsh");
        String script = String.join("\n",
                "assert h.is_read_only()",
                "h.set_strict_mode(0)",
                "for name, call in [('write', lambda: h.pwrite(b'x' * 512, 0)),",
                "                   ('zero', lambda: h.zero(4096, 0)),",
                "                   ('trim', lambda: h.trim(4096, 0))]:",
                "    try:",
                "        call()",
                "        raise AssertionError(name + ' succeeded')",
                "    except nbd.Error as e:",
                "        assert e.errnum == errno.EPERM, (name, e)",
                "h.flush()",
                "assert h.pread(4096, 2 << 20) == bytes(4096)",
                "assert h.pread(4096, 2 << 20) == bytes(4096)",
                "assert h.pread(512, 0) == b'\\x5a' * 512");
        ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", server.uri(), "-c", "import errno",
                "-c", script).assertSuccess();
        ServeProcess.Exit status = ServeProcess.run(dir, "status", "--admin", server.admin(), "--json");
        JsonNode json = new ObjectMapper().readTree(status.stdout());
        assertThat(json.get("writes").asLong()).as("nothing written").isZero();
        assertThat(json.get("read_misses").asLong()).as("the first read went to the backing").isPositive();
        assertThat(json.get("read_hits_full").asLong()).as("the second was served from the cache").isPositive();
    }
}
