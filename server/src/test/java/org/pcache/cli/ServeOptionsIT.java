package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.pcache.nbd.ExternalTool;

/**
 * {@code pcache serve}'s command line: the defaults of the README's first command, and every refused start — one
 * line on stderr, no stack trace, a non-zero exit status (2 for a wrong command line, 1 when it cannot start).
 */
class ServeOptionsIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private ServeFiles files;

    @BeforeEach
    void files() throws IOException {
        files = new ServeFiles(dir);
    }

    @AfterEach
    void cleanUp() throws IOException {
        files.close();
    }

    @Test
    void withoutOptionsServesDefaultFilesOnTheNbdPortWithTheAdminEndpointNextToIt() throws Exception {
        assumePortFree(10809);
        assumePortFree(10810);
        try (ServeProcess server = ServeProcess.start(dir, "serve")) {
            assertThat(server.readyLine()).isEqualTo("pcache: serving nbd://127.0.0.1:10809/ (cache "
                    + "./pcache-data/cache.img 1.0 GiB, backing ./pcache-data/backing.img 8.0 GiB, admin "
                    + "127.0.0.1:10810)");
            assertThat(Files.size(dir.resolve("pcache-data/cache.img"))).isEqualTo(1L << 30);
            assertThat(Files.size(dir.resolve("pcache-data/backing.img"))).isEqualTo(8L << 30);
            ExternalTool.require("nbdinfo");
            String size = ExternalTool.run(TIMEOUT, "nbdinfo", "--size", "nbd://127.0.0.1:10809").assertSuccess()
                    .stdout().trim();
            assertThat(size).isEqualTo(Long.toString(8L << 30));
            assertThat(server.terminate()).isZero();
        }
    }

    private static void assumePortFree(int port) {
        boolean portFree;
        try (ServerSocket probe = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
            portFree = true;
        } catch (IOException e) {
            portFree = false;
        }
        if (!portFree) {
            System.out.println("SKIPPED: 127.0.0.1:" + port + " is in use by another program");
        }
        assumeTrue(portFree, "127.0.0.1:" + port + " is in use");
    }

    @ParameterizedTest(name = "--cache-size ''{0}''")
    @ValueSource(strings = {"12X", "-1", "", "1.5G", "G", "99999999999999T"})
    void aBadSizeIsAUsageError(String size) throws Exception {
        ServeProcess.run(dir, files.serve("64M", "--cache-size", size))
                .assertRefused(2, "is not a size");
    }

    @Test
    void otherBadOptionsAreUsageErrors() throws Exception {
        ServeProcess.run(dir, files.serve("64M", "--data-crc", "yes")).assertRefused(2, "is not true or false");
        ServeProcess.run(dir, files.serve("64M", "--gc-percent", "91")).assertRefused(2, "out of range");
        ServeProcess.run(dir, files.serve("64M", "--listen", "127.0.0.1")).assertRefused(2, "--listen");
        ServeProcess.run(dir, files.serve("64M", "--no-such-option")).assertRefused(2, "--no-such-option");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--listen", "127.0.0.1:0", "--admin",
                "192.0.2.1:10810").assertRefused(2, "loopback only");
        assertThat(Files.exists(files.cache)).as("nothing created for a wrong command line").isFalse();
    }

    @Test
    void aCacheDirectoryThatCannotBeCreatedIsRefused() throws Exception {
        Path notADirectory = Files.writeString(dir.resolve("plain-file"), "x");
        ServeProcess.run(dir, "serve", "--cache", notADirectory.resolve("cache.img").toString(), "--backing",
                files.backing.toString(), "--backing-size", "64M", "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "cannot create directory");
    }

    @Test
    void aPortInUseIsRefusedBeforeTheCacheIsCreated() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + taken.getLocalPort();
            ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", files.backing.toString(),
                    "--backing-size", "64M", "--listen", address, "--admin",
                    ServeFiles.EPHEMERAL_ADMIN).assertRefused(1, "cannot listen on " + address);
        }
        assertThat(Files.exists(files.cache)).isFalse();
    }

    @Test
    void anAdminPortInUseIsRefusedBeforeTheCacheIsCreated() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String address = "127.0.0.1:" + taken.getLocalPort();
            ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", files.backing.toString(),
                    "--backing-size", "64M", "--listen", "127.0.0.1:0", "--admin", address)
                    .assertRefused(1, "cannot listen on " + address);
        }
        assertThat(Files.exists(files.cache)).isFalse();
    }

    @Test
    void aSecondServerOnTheSameCacheIsRefused() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M"))) {
            ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", files.backing.toString(),
                    "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                    .assertRefused(1, "is in use: another pcache process is using it");
            assertThat(server.terminate()).isZero();
        }
    }

    @Test
    void aCacheUnderTheMinimumSizeIsRefused() throws Exception {
        ServeProcess.run(dir, files.serve("64M", "--cache-size", "511M")).assertRefused(1, "below dm-pcache's minimum");
        try (RandomAccessFile small = new RandomAccessFile(files.cache.toFile(), "rw")) {
            small.setLength(256L << 20);
        }
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", files.backing.toString(),
                "--backing-size", "64M", "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "below dm-pcache's minimum");
    }

    @Test
    void anExistingCacheRefusesAnotherSizeAndAnotherDataCrc() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M", "--data-crc", "true"))) {
            assertThat(server.terminate()).isZero();
        }
        ServeProcess.run(dir, files.serve("64M", "--data-crc", "false")).assertRefused(1, "data_crc=true");
        ServeProcess.run(dir, files.serve("64M", "--cache-size", "1G")).assertRefused(1, "never resized");
        ServeProcess.run(dir, files.serve("128M")).assertRefused(1, "--backing-size");
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M"))) {
            assertThat(server.stderr()).as("without --data-crc the cache keeps its setting")
                    .contains("replayed");
            assertThat(server.terminate()).isZero();
        }
    }

    @Test
    void aCorruptCacheIsRefusedWithoutBeingFormattedAgain() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M"))) {
            assertThat(server.terminate()).isZero();
        }
        try (RandomAccessFile cache = new RandomAccessFile(files.cache.toFile(), "rw")) {
            cache.seek(4096 + 16); // superblock seg_num: its CRC no longer matches
            cache.write(0x7f);
        }
        ServeProcess.run(dir, files.serve("64M")).assertRefused(1, "is corrupt");
    }

    @Test
    void aCacheWithBothCacheInfoCopiesDamagedIsRefusedUntilFormatIsGiven() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M"))) {
            assertThat(server.terminate()).isZero();
        }
        long[] copies = {8192, 8192 + 4096}; // cache_info's two slots; a flipped flags byte breaks each CRC
        try (RandomAccessFile cache = new RandomAccessFile(files.cache.toFile(), "rw")) {
            for (long copy : copies) {
                cache.seek(copy + 16);
                int flags = cache.read();
                cache.seek(copy + 16);
                cache.write(~flags);
            }
        }
        byte[] before = head(files.cache);

        ServeProcess.Exit refused = ServeProcess.run(dir, files.serve("64M")).assertRefused(1, "cache_info lost");
        assertThat(refused.stderr()).contains("no valid copy (copy 0 at offset 8192: crc 0x")
                .contains("; copy 1 at offset 12288: crc 0x").contains("start with --format");

        assertThat(head(files.cache)).as("the refused cache is left as it was").isEqualTo(before);
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M", "--format"))) {
            assertThat(server.stderr()).contains("formatted cache");
            assertThat(server.terminate()).isZero();
        }
        try (ServeProcess server = ServeProcess.start(dir, files.serve("64M"))) {
            assertThat(server.stderr()).contains("replayed").doesNotContain("formatted cache");
            assertThat(server.terminate()).isZero();
        }
    }

    /** The device header and the first segment's metadata: everything an open could touch first. */
    private static byte[] head(Path cache) throws IOException {
        try (RandomAccessFile file = new RandomAccessFile(cache.toFile(), "r")) {
            byte[] head = new byte[1 << 20];
            file.readFully(head);
            return head;
        }
    }

    @Test
    void aMissingOrUnusableBackingDeviceIsRefused() throws Exception {
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", "/dev/pcache-no-such-disk",
                "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN).assertRefused(1, "does not exist");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", dir.toString(),
                "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "not a regular file or block device");
        int closedPort;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = probe.getLocalPort();
        }
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing",
                "nbd://127.0.0.1:" + closedPort + "/", "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "cannot connect to backing");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing", "nbds://127.0.0.1/x",
                "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "TLS needs client credentials");
        assertThat(Files.exists(files.cache)).as("the cache is not created when the backing fails").isFalse();
    }

    @Test
    void cacheAndBackingFilesAreCreatedOnTmpfsUnderDev() throws Exception {
        Path shm = Path.of("/dev/shm");
        assumeTrue(Files.isDirectory(shm) && Files.isWritable(shm), "/dev/shm is not a writable directory");
        Path shmDir = Files.createTempDirectory(shm, "pcache-it-dev-");
        try {
            Path cache = shmDir.resolve("new/cache.img");
            Path backing = shmDir.resolve("new/backing.img");
            try (ServeProcess server = ServeProcess.start(dir, "serve", "--cache", cache.toString(), "--backing",
                    backing.toString(), "--backing-size", "64M", "--cache-size", "512M", "--listen", "127.0.0.1:0",
                    "--admin", ServeFiles.EPHEMERAL_ADMIN)) {
                assertThat(server.terminate()).isZero();
            }
            assertThat(Files.size(cache)).isEqualTo(512L << 20);
            assertThat(Files.size(backing)).isEqualTo(64L << 20);
        } finally {
            deleteTree(shmDir);
        }
    }

    @Test
    void aMissingDeviceNodeIsRefusedForTheCacheAndTheBacking() throws Exception {
        assumeTrue(Files.isDirectory(Path.of("/dev")), "no /dev");
        Path missingNode = Path.of("/dev/pcache-no-such-pmem");
        Path missingDir = Path.of("/dev/pcache-no-such-dir");
        try {
            ServeProcess.run(dir, "serve", "--cache", missingNode.toString(), "--backing", files.backing.toString(),
                    "--backing-size", "64M", "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                    .assertRefused(1, "cache device " + missingNode + " does not exist");
            ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--backing",
                    missingDir.resolve("disk").toString(), "--listen", "127.0.0.1:0", "--admin",
                    ServeFiles.EPHEMERAL_ADMIN)
                    .assertRefused(1, "backing device " + missingDir.resolve("disk") + " does not exist");
            assertThat(missingNode).as("nothing created in /dev").doesNotExist();
            assertThat(missingDir).as("nothing created in /dev").doesNotExist();
        } finally {
            deleteTree(missingNode);
            deleteTree(missingDir);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }

    @Test
    void helpDescribesEveryOptionAndExitsZero() throws Exception {
        ServeProcess.Exit help = ServeProcess.run(dir, "serve", "--help");
        assertThat(help.status()).isZero();
        for (String option : new String[] {"--cache", "--backing", "--cache-size", "--backing-size", "--data-crc",
                "--gc-percent", "--format", "--listen", "--socket", "--export", "--admin", "--debug"}) {
            assertThat(help.stdout()).contains(option);
        }
    }

    @Test
    void debugPrintsTheStackTraceOfARefusedStart() throws Exception {
        ServeProcess.Exit exit = ServeProcess.run(dir, "serve", "--debug", "--cache", files.cache.toString(),
                "--backing", dir.toString(), "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN);
        assertThat(exit.status()).isEqualTo(1);
        assertThat(exit.stderr()).contains("pcache: cannot open backing").contains("\tat ");
    }
}
