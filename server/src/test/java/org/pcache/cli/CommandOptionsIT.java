package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line of every command but serve, without a server: help, and every refusal — one line on stderr,
 * no stack trace, exit status 1 when the work cannot be done, 2 for a wrong command line, 3 for an image that is
 * not a valid cache.
 */
class CommandOptionsIT {

    @TempDir
    Path dir;

    private ServeFiles files;

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
    }

    @AfterEach
    void cleanUp() throws Exception {
        files.close();
    }

    @Test
    void everyCommandHasHelpListingItsOptionsAndExitStatus() throws Exception {
        ServeProcess.Exit top = ServeProcess.run(dir, "--help");
        assertThat(top.status()).isZero();
        assertThat(top.stdout()).contains("serve", "status", "message", "drain", "check", "dump", "recover");
        for (List<String> command : List.of(List.of("status", "--admin", "--json"), List.of("message", "--admin"),
                List.of("drain", "--admin"), List.of("check", "--cache", "--backing-size"),
                List.of("dump", "--cache", "--json"), List.of("recover", "--cache", "--backing"))) {
            ServeProcess.Exit help = ServeProcess.run(dir, command.get(0), "--help");
            assertThat(help.status()).as("%s --help", command.get(0)).isZero();
            assertThat(help.stdout()).contains(command.subList(1, command.size())).contains("Exit status");
        }
    }

    @Test
    void anAdminEndpointThatDoesNotAnswerIsOneLineAndStatusOne() throws Exception {
        int closedPort;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closedPort = probe.getLocalPort();
        }
        String nowhere = "127.0.0.1:" + closedPort;
        ServeProcess.run(dir, "status", "--admin", nowhere).assertRefused(1, "cannot reach the admin endpoint at "
                + nowhere);
        ServeProcess.run(dir, "message", "--admin", nowhere, "gc_percent", "10").assertRefused(1, "connection refused");
        ServeProcess.run(dir, "drain", "--admin", nowhere).assertRefused(1, "connection refused");
        ServeProcess.run(dir, "status", "--admin", "localhost").assertRefused(2, "is not a HOST:PORT address");
        ServeProcess.run(dir, "message", "--admin", nowhere, "gc_percent", "91").assertRefused(2, "out of range");
    }

    @Test
    void offlineCommandsRefuseAMissingCacheWithoutCreatingIt() throws Exception {
        Path missing = dir.resolve("no-such-cache.img");
        ServeProcess.run(dir, "check", "--cache", missing.toString()).assertRefused(1, "does not exist");
        ServeProcess.run(dir, "dump", "--cache", missing.toString()).assertRefused(1, "does not exist");
        ServeProcess.run(dir, "recover", "--cache", missing.toString(), "--backing", files.backing.toString())
                .assertRefused(1, "does not exist");
        assertThat(Files.exists(missing)).isFalse();
        assertThat(Files.exists(files.backing)).as("recover creates no backing file either").isFalse();
        ServeProcess.run(dir, "check", "--cache", dir.toString()).assertRefused(1, "not a regular file");
        ServeProcess.run(dir, "check").assertRefused(2, "--cache");
        ServeProcess.run(dir, "dump", "--cache", missing.toString(), "--bogus").assertRefused(2, "--bogus");
        ServeProcess.run(dir, "check", "--cache", missing.toString(), "--backing-size", "12X")
                .assertRefused(2, "is not a size");
    }

    @Test
    void aFileThatHoldsNoCacheIsACorruptImage() throws Exception {
        Path small = dir.resolve("small.img");
        try (RandomAccessFile file = new RandomAccessFile(small.toFile(), "rw")) {
            file.setLength(1 << 20);
        }
        ServeProcess.Exit tooSmall = ServeProcess.run(dir, "check", "--cache", small.toString());
        assertThat(tooSmall.status()).isEqualTo(3);
        assertThat(tooSmall.stdout().lines().toList()).singleElement().asString().contains("size expected at least");

        Path blank = files.cache;
        try (RandomAccessFile file = new RandomAccessFile(blank.toFile(), "rw")) {
            file.setLength(512L << 20);
        }
        ServeProcess.Exit never = ServeProcess.run(dir, "check", "--cache", blank.toString());
        assertThat(never.status()).isEqualTo(3);
        assertThat(never.stdout()).contains("never formatted");
        ServeProcess.run(dir, "dump", "--cache", blank.toString()).assertRefused(3, "never formatted");
    }
}
