package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.pcache.nbd.ExternalTool;

/**
 * nbdkit serving a backing device to a child {@code pcache serve} on a private unix socket, with filters to make it
 * slow or failing. nbdkit runs {@code --run} once it listens; that command prints the socket (the ready signal) and
 * waits on stdin, so closing stdin ends nbdkit.
 */
final class NbdkitProcess implements AutoCloseable {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private final Process process;
    private final String uri;

    private NbdkitProcess(Process process, String uri) {
        this.process = process;
        this.uri = uri;
    }

    /** Starts {@code nbdkit PLUGIN-AND-FILTERS...}, logging to {@code log}; skips the test without nbdkit. */
    static NbdkitProcess start(Path log, String... pluginAndFilters) throws Exception {
        ExternalTool.require("nbdkit");
        List<String> command = ExternalTool.list("nbdkit", "-U", "-");
        command.addAll(List.of(pluginAndFilters));
        command.addAll(List.of("--run", "echo \"$unixsocket\"; cat"));
        Process process = new ProcessBuilder(command).redirectError(log.toFile()).start();
        CompletableFuture<String> socket = CompletableFuture.supplyAsync(() -> {
            try {
                return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                        .readLine();
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
        String path = socket.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(path).as("nbdkit %s started", command).isNotNull().startsWith("/");
        return new NbdkitProcess(process, "nbd+unix:///?socket=" + path);
    }

    /** The URI pcache's {@code --backing} takes. */
    String uri() {
        return uri;
    }

    @Override
    public void close() throws Exception {
        process.getOutputStream().close();
        if (!process.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor();
        }
    }
}
