package org.pcache.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * The files of one test's pcache: the cache region on /dev/shm when it is writable (as in production here: tmpfs
 * stands in for persistent memory), otherwise in the work directory; the backing file and the unix socket in the
 * work directory (a test's {@code @TempDir}).
 */
final class ServeFiles implements AutoCloseable {

    static final String CACHE_SIZE = "512M";
    /** An admin endpoint on any free port, so that tests never meet each other (or a real server) on 10810. */
    static final String EPHEMERAL_ADMIN = "127.0.0.1:0";

    final Path workDir;
    final Path cache;
    final Path backing;
    final Path socket;
    private final Path shmDir;

    ServeFiles(Path workDir) throws IOException {
        this.workDir = workDir;
        Path shm = Path.of("/dev/shm");
        this.shmDir = Files.isDirectory(shm) && Files.isWritable(shm)
                ? Files.createTempDirectory(shm, "pcache-it-") : null;
        this.cache = (shmDir != null ? shmDir : workDir).resolve("cache.img");
        this.backing = workDir.resolve("backing.img");
        this.socket = workDir.resolve("nbd.sock");
    }

    /**
     * Arguments for {@code pcache serve} on these files with a backing file of {@code backingSize} and a cache of
     * {@link #CACHE_SIZE} (unless {@code extra} names another), on an ephemeral TCP port and the unix socket, the
     * admin endpoint on an ephemeral port, followed by {@code extra}.
     */
    String[] serve(String backingSize, String... extra) {
        List<String> args = new ArrayList<>(List.of("serve", "--cache", cache.toString(), "--backing",
                backing.toString(), "--backing-size", backingSize, "--listen", "127.0.0.1:0", "--socket",
                socket.toString(), "--admin", EPHEMERAL_ADMIN));
        if (!List.of(extra).contains("--cache-size")) {
            args.addAll(List.of("--cache-size", CACHE_SIZE));
        }
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }

    @Override
    public void close() throws IOException {
        if (shmDir != null) {
            try (Stream<Path> files = Files.walk(shmDir)) {
                for (Path path : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(path);
                }
            }
        }
    }
}
