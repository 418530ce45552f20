package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.InetSocketAddress;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.admin.StatusDocument;
import org.pcache.nbd.ExternalTool;

/**
 * The cache file fails under a running {@code pcache serve}: it is truncated (a disk directory), or the small tmpfs
 * under a sparse cache file larger than it fills up. Either way the memory accesses fault (SIGBUS, which Java reports
 * as an {@link InternalError}) and the cache must go to its failed state: the process stays alive, no thread dies of
 * an uncaught error, clients' writes and flushes get EIO within a bound, status names the cause, and SIGTERM stops
 * the server cleanly.
 */
class ServeCacheFileFaultIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int MIB = 1 << 20;
    /** Write attempts after the fault before the test gives up waiting for EIO. */
    private static final int ATTEMPTS = 64;

    @TempDir
    Path dir;

    private ServeProcess server;
    private Path mountPoint;

    @BeforeEach
    void tools() {
        ExternalTool.require("qemu-io");
    }

    @AfterEach
    void stop() throws Exception {
        try {
            if (server != null) {
                server.close();
            }
        } finally {
            if (mountPoint != null) {
                ExternalTool.run(TIMEOUT, "umount", mountPoint.toString()).assertSuccess();
            }
        }
    }

    @Test
    void aCacheFileTruncatedUnderTheServerFailsTheCache() throws Exception {
        Path cache = dir.resolve("cache.img");
        server = serve(cache, "512M", "64M");
        assertThat(qemuIo("write -P 0x11 0 8M", "flush").stdout()).doesNotContain("error");

        try (FileChannel channel = FileChannel.open(cache, StandardOpenOption.WRITE)) {
            channel.truncate(4096);
        }
        String errors = writeUntilEio(64L * MIB);

        StatusDocument status = awaitFailed();
        assertThat(status.failure()).as("the cause").containsAnyOf("truncated", "SIGBUS");
        ExternalTool.Result read = qemuIo("read -P 0x11 0 1M");
        assertThat(read.stdout() + read.stderr()).as("a read hit on pages the truncation dropped")
                .contains("Input/output error");
        assertFailedEverywhere(errors);
    }

    @Test
    void aSparseCacheFileLargerThanItsFullTmpfsFailsTheCache() throws Exception {
        Path tmpfs = mountTmpfs("300m");
        // 300 MiB hold the pre-faulted first 256 MiB of the 512 MiB cache, so it starts; its writes then run into the
        // full file system.
        server = serve(tmpfs.resolve("cache.img"), "512M", "512M");

        String errors = writeUntilEio(512L * MIB, 160);

        StatusDocument status = awaitFailed();
        assertThat(status.failure()).as("the cause").containsAnyOf("full", "SIGBUS", "space");
        assertFailedEverywhere(errors);
    }

    @Test
    void aTmpfsTooSmallForTheCachesMetadataIsRefusedAtStartNamingTheFullFileSystem() throws Exception {
        Path tmpfs = mountTmpfs("64m");
        assertThatThrownBy(() -> serve(tmpfs.resolve("cache.img"), "512M", "256M"))
                .hasMessageContaining("its file system is full");
    }

    /** A tmpfs of {@code size} under the test directory (skips the test without root); unmounted after it. */
    private Path mountTmpfs(String size) throws Exception {
        Path tmpfs = Files.createDirectory(dir.resolve("tmpfs"));
        ExternalTool.Result mount = ExternalTool.run(TIMEOUT, "mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs",
                tmpfs.toString());
        assumeTrue(mount.exit() == 0, "mount -t tmpfs needs root (CAP_SYS_ADMIN): " + mount.stderr().strip());
        mountPoint = tmpfs;
        return tmpfs;
    }

    private ServeProcess serve(Path cache, String cacheSize, String backingSize) throws Exception {
        Path backing = dir.resolve("backing.img");
        return ServeProcess.start(dir, "serve", "--cache", cache.toString(), "--cache-size", cacheSize,
                "--backing", backing.toString(), "--backing-size", backingSize, "--listen", "127.0.0.1:0",
                "--admin", ServeFiles.EPHEMERAL_ADMIN);
    }

    /**
     * Writes 4 MiB with a flush after each, at fresh offsets below {@code deviceSize} (wrapping around), until a
     * client is told EIO; every qemu-io run is bounded by {@link #TIMEOUT}. Returns what qemu-io printed then.
     */
    private String writeUntilEio(long deviceSize) throws Exception {
        return writeUntilEio(deviceSize, ATTEMPTS);
    }

    private String writeUntilEio(long deviceSize, int attempts) throws Exception {
        for (int attempt = 0; attempt < attempts; attempt++) {
            long offset = (attempt * 4L * MIB) % deviceSize;
            ExternalTool.Result result = qemuIo("write -P 0x" + Integer.toHexString(0x20 + attempt % 0xd0) + " "
                    + offset + " 4M", "flush");
            String out = result.stdout() + result.stderr();
            if (out.contains("Input/output error")) {
                return out;
            }
            assertThat(server.isAlive()).as("server alive after write %d; stderr:\n%s", attempt, server.stderr())
                    .isTrue();
        }
        throw new AssertionError("no write or flush failed in " + attempts + " attempts; stderr:\n"
                + server.stderr());
    }

    /** The client saw EIO, the process lives, no thread died, status and JSON say failed, SIGTERM is clean. */
    private void assertFailedEverywhere(String clientErrors) throws Exception {
        assertThat(clientErrors).contains("Input/output error");
        ExternalTool.Result after = qemuIo("write -P 0x77 0 64k", "flush");
        assertThat(after.stdout() + after.stderr()).as("a write after the failure").contains("Input/output error");

        ServeProcess.Exit plain = ServeProcess.run(dir, "status", "--admin", server.admin());
        assertThat(plain.status()).as("status; stderr: %s", plain.stderr()).isZero();
        assertThat(plain.stdout()).contains("failed");
        ServeProcess.Exit json = ServeProcess.run(dir, "status", "--admin", server.admin(), "--json");
        assertThat(json.stdout()).containsPattern("\"health\"\\s*:\\s*\"failed\"")
                .containsPattern("\"failure\"\\s*:\\s*\"");

        assertThat(server.isAlive()).isTrue();
        assertThat(server.stderr()).as("no thread died of an uncaught throwable")
                .doesNotContain("Exception in thread").doesNotContain("uncaught");
        assertThat(server.terminate()).as("exit status after SIGTERM; stderr:\n%s", server.stderr()).isZero();
        server = null;
    }

    private StatusDocument awaitFailed() throws Exception {
        return awaitStatus("health failed", StatusDocument::failed);
    }

    private StatusDocument awaitStatus(String what, Predicate<StatusDocument> condition) throws Exception {
        try (AdminClient admin = new AdminClient(address(server.admin()))) {
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            StatusDocument status = admin.status();
            while (!condition.test(status)) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("status never showed " + what + "; last: " + status);
                }
                Thread.sleep(20);
                status = admin.status();
            }
            return status;
        }
    }

    private ExternalTool.Result qemuIo(String... commands) throws Exception {
        String[] command = new String[6 + 2 * commands.length];
        int i = 0;
        for (String part : new String[] {"qemu-io", "-f", "raw", "-t", "none", server.uri()}) {
            command[i++] = part;
        }
        for (String c : commands) {
            command[i++] = "-c";
            command[i++] = c;
        }
        return ExternalTool.run(TIMEOUT, command);
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }
}
