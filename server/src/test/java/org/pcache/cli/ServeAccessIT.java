package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who may connect: NBD on a non-loopback address is served with a warning, the admin endpoint leaves loopback only
 * with a token, and then every request needs it; the status, message and drain commands pass it, and the token
 * appears in no output of any process.
 */
class ServeAccessIT {

    private static final String TOKEN = "it-token-6f1e2d3c4b5a69788796a5b4";

    @TempDir
    Path dir;

    private ServeFiles files;
    private Path tokenFile;
    private final List<ServeProcess.Exit> outputs = new ArrayList<>();

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
        tokenFile = Files.writeString(dir.resolve("admin.token"), TOKEN + "\n");
    }

    @AfterEach
    void close() throws Exception {
        files.close();
    }

    @Test
    void aNonLoopbackAdminAddressNeedsAToken() throws Exception {
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--cache-size", ServeFiles.CACHE_SIZE,
                "--backing", files.backing.toString(), "--backing-size", "4M", "--listen", "127.0.0.1:0",
                "--admin", "0.0.0.0:0").assertRefused(2, "give --admin-token-file FILE or PCACHE_ADMIN_TOKEN");
        Path shortToken = Files.writeString(dir.resolve("short.token"), "tiny-secret\n");
        ServeProcess.Exit refused = ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", files.backing.toString(), "--backing-size", "4M", "--listen",
                "127.0.0.1:0", "--admin", "0.0.0.0:0", "--admin-token-file", shortToken.toString())
                .assertRefused(1, "16 to");
        assertThat(refused.stderr()).doesNotContain("tiny-secret");
    }

    @Test
    void everyAdminRequestNeedsTheTokenTheCommandsPassItAndNoOutputShowsIt() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", files.backing.toString(), "--backing-size", "4M", "--listen",
                "0.0.0.0:0", "--admin", "0.0.0.0:0", "--admin-token-file", tokenFile.toString(), "--debug")) {
            assertThat(server.stderr()).contains("is reachable from other hosts, without TLS");
            String admin = "127.0.0.1:" + server.admin().substring(server.admin().lastIndexOf(':') + 1);

            ServeProcess.Exit without = run(Map.of(), "status", "--admin", admin);
            assertThat(without.status()).isEqualTo(1);
            assertThat(without.stderr()).contains("requires a token");
            ServeProcess.Exit wrong = run(Map.of(AdminTokenSource.ENVIRONMENT, TOKEN.replace('6', '7')), "status",
                    "--admin", admin);
            assertThat(wrong.status()).isEqualTo(1);
            assertThat(wrong.stderr()).contains("wrong admin token");

            assertThat(run(Map.of(), "status", "--admin", admin, "--admin-token-file", tokenFile.toString())
                    .status()).isZero();
            assertThat(run(Map.of(AdminTokenSource.ENVIRONMENT, TOKEN), "status", "--admin", admin, "--json")
                    .status()).isZero();
            assertThat(run(Map.of(), "message", "--admin", admin, "--admin-token-file", tokenFile.toString(),
                    "gc_percent", "60").status()).isZero();
            ServeProcess.Exit drain = run(Map.of(AdminTokenSource.ENVIRONMENT, TOKEN), "drain", "--admin", admin);
            assertThat(drain.status()).as(drain.stderr()).isZero();

            assertThat(server.terminate()).isZero();
            assertThat(server.stderr()).contains("refused: no token").contains("refused: wrong token")
                    .doesNotContain(TOKEN).doesNotContain(TOKEN.replace('6', '7'));
        }
        for (ServeProcess.Exit exit : outputs) {
            assertThat(exit.stdout() + exit.stderr()).doesNotContain(TOKEN).doesNotContain(TOKEN.replace('6', '7'));
        }
    }

    @Test
    void loopbackNbdIsServedWithoutAWarning() throws Exception {
        try (ServeProcess server = ServeProcess.start(dir, files.serve("4M"))) {
            assertThat(server.terminate()).isZero();
            assertThat(server.stderr()).doesNotContain("reachable from other hosts");
        }
    }

    private ServeProcess.Exit run(Map<String, String> environment, String... args) throws Exception {
        ServeProcess.Exit exit = ServeProcess.run(environment, dir, args);
        outputs.add(exit);
        return exit;
    }
}
