package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache records the backing device it caches and refuses another one: a cache made in front of one backing
 * file is refused in front of a second file of the same size (naming both), accepted with {@code --force-backing}
 * (which records the new one), and accepted in front of the same file renamed; check and dump show the record. A
 * second server with its own cache in front of the same backing is refused while the first runs.
 */
class BackingIdentityIT {

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void files() throws Exception {
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("64M"));
        SectorData.writeAndFlush(server.uri(), 0, 1 << 20, 1);
        assertThat(server.terminate()).isZero();
        server = null;
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        files.close();
    }

    @Test
    void anotherBackingFileIsRefusedNamingBothAndForceBackingRecordsIt() throws Exception {
        Path other = dir.resolve("other.img");
        try (RandomAccessFile file = new RandomAccessFile(other.toFile(), "rw")) {
            file.setLength(64L << 20);
        }
        ServeProcess.Exit refused = ServeProcess.run(dir, serveWith(other));
        refused.assertRefused(1, "caches file " + files.backing.toAbsolutePath());
        assertThat(refused.messages().get(0)).contains("not file " + other).contains("--force-backing");

        server = ServeProcess.start(dir, serveWith(other, "--force-backing"));
        assertThat(server.terminate()).isZero();
        server = null;
        ServeProcess.Exit check = ServeProcess.run(dir, "check", "--cache", files.cache.toString());
        assertThat(check.stdout()).contains("backing: file " + other);
        ServeProcess.run(dir, serveWith(files.backing)).assertRefused(1, "caches file " + other);
    }

    @Test
    void theSameFileRenamedIsAcceptedAndDumpShowsTheRecord() throws Exception {
        ServeProcess.Exit dump = ServeProcess.run(dir, "dump", "--cache", files.cache.toString());
        assertThat(dump.stdout()).contains("backing_identity file " + files.backing.toAbsolutePath());
        Path renamed = Files.move(files.backing, dir.resolve("renamed.img"));
        server = ServeProcess.start(dir, serveWith(renamed));
        assertThat(SectorData.read(server.uri(), 0, 1 << 20)).isEqualTo(SectorData.of(0, 1 << 20, 1));
    }

    @Test
    void aSecondServerWithItsOwnCacheOnTheSameBackingIsRefused() throws Exception {
        server = ServeProcess.start(dir, files.serve("64M"));
        Path secondCache = dir.resolve("second-cache.img");
        String[] args = files.serve("64M");
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--cache")) {
                args[i + 1] = secondCache.toString();
            } else if (args[i].equals("--socket")) {
                args[i + 1] = dir.resolve("second.sock").toString();
            }
        }
        ServeProcess.run(dir, args).assertRefused(1, "is already cached by another pcache on this host");
    }

    private String[] serveWith(Path backing, String... extra) {
        String[] args = files.serve("64M", extra);
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals("--backing")) {
                args[i + 1] = backing.toString();
            }
        }
        return args;
    }
}
