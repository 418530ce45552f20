package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * {@code pcache serve --backing nbd+unix://...}: the cache in front of nbdkit's memory plugin, plain, behind the
 * delay filter (misses pay the delay, hits and writes do not; SIGTERM waits for a read in flight) and behind the
 * error filter (a failing backing read reaches the client as EIO, and the server goes on serving); an export that
 * needs 4 KiB-aligned I/O is refused at start.
 */
class ServeNbdBackingIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private ServeFiles files;
    private final List<Process> nbdkits = new ArrayList<>();
    private ServeProcess server;

    @BeforeEach
    void files() throws Exception {
        ExternalTool.require("nbdkit");
        ExternalTool.require("nbdsh");
        files = new ServeFiles(dir);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        for (Process nbdkit : nbdkits) {
            nbdkit.getOutputStream().close(); // ends the --run command, and with it nbdkit
            if (!nbdkit.waitFor(10, TimeUnit.SECONDS)) {
                nbdkit.destroyForcibly().waitFor();
            }
        }
        if (files != null) {
            files.close();
        }
    }

    @Test
    void cachesNbdkitMemory() throws Exception {
        ExternalTool.require("qemu-io");
        String backing = nbdkit("memory", "64M");
        ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", backing, "-c", "write -P 0x33 0 1M")
                .assertSuccess();
        server = serve(backing);
        String out = ExternalTool.run(TIMEOUT, "qemu-io", "-f", "raw", "-t", "none", server.uri(),
                "-c", "read -P 0x33 0 1M",
                "-c", "write -P 0x44 512 4096",
                "-c", "read -P 0x44 512 4096",
                "-c", "read -P 0x33 4608 1043968",
                "-c", "read -P 0 1M 1M",
                "-c", "flush").assertSuccess().stdout();
        assertThat(out).doesNotContain("Pattern verification failed").doesNotContain("error");
        assertThat(ExternalTool.run(TIMEOUT, "nbdinfo", "--size", server.uri()).assertSuccess().stdout().trim())
                .isEqualTo(Long.toString(64L << 20));
    }

    @Test
    void behindTheDelayFilterOnlyMissesWaitForTheBacking() throws Exception {
        String backing = nbdkit("--filter=delay", "memory", "64M", "rdelay=400ms", "wdelay=400ms");
        server = serve(backing);
        String out = nbdsh(server.uri(),
                "t = time.monotonic(); h.pread(65536, 1 << 20); miss = time.monotonic() - t",
                "t = time.monotonic(); h.pread(65536, 1 << 20); hit = time.monotonic() - t",
                "t = time.monotonic(); h.pwrite(b'x' * 65536, 2 << 20); h.flush(); write = time.monotonic() - t",
                "print('miss %.3f hit %.3f write %.3f' % (miss, hit, write))",
                "assert miss >= 0.4, 'a miss reads the backing'",
                "assert hit < 0.3, 'a hit does not'",
                "assert write < 0.3, 'a write and a flush stay in the cache'",
                "print('OK')");
        assertThat(out).as(out).endsWith("OK\n");
    }

    @Test
    void aFailingBackingGivesEioAndTheServerGoesOn() throws Exception {
        Path trigger = dir.resolve("fail-now");
        String backing = nbdkit("--filter=error", "memory", "64M", "error=EIO", "error-rate=100%",
                "error-file=" + trigger);
        server = serve(backing);
        nbdsh(server.uri(), "h.pwrite(b'c' * 65536, 0)", "h.flush()");
        Files.createFile(trigger);
        String failing = nbdsh(server.uri(),
                "try:",
                "    h.pread(65536, 8 << 20)",
                "    print('no error')",
                "except nbd.Error as e:",
                "    print('read error', e.errno)",
                "assert h.pread(65536, 0) == b'c' * 65536, 'cached data is still served'");
        assertThat(failing).contains("read error EIO");
        assertThat(server.isAlive()).isTrue();
        Files.delete(trigger);
        String healed = nbdsh(server.uri(), "assert h.pread(65536, 8 << 20) == bytes(65536)", "print('OK')");
        assertThat(healed).endsWith("OK\n");
    }

    @Test
    void anExportWithA4KiBMinimumBlockSizeIsRefusedInOneLine() throws Exception {
        String backing = nbdkit("--filter=blocksize-policy", "memory", "64M", "blocksize-minimum=4096");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--cache-size", ServeFiles.CACHE_SIZE,
                "--backing", backing, "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "needs 4096-byte aligned I/O");
    }

    @Test
    void blockStatusShowsTheNbdBackingsHolesAndWhatTheCacheHolds() throws Exception {
        ExternalTool.require("nbdinfo");
        String backing = nbdkit("memory", "64M");
        ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", backing, "-c",
                "h.pwrite(b'b' * (1 << 20), 4 << 20)").assertSuccess();
        server = serve(backing);
        nbdsh(server.uri(), "h.pwrite(b'c' * 65536, 32 << 20)", "h.flush()");
        List<String> map = ExternalTool.run(TIMEOUT, "nbdinfo", "--map", server.uri()).assertSuccess().stdout()
                .lines().map(line -> line.trim().replaceAll("\\s+", " ")).toList();
        assertThat(map).containsExactly("0 4194304 3 hole,zero", "4194304 1048576 0 data",
                "5242880 28311552 3 hole,zero", "33554432 65536 0 data", "33619968 33488896 3 hole,zero");
    }

    @Test
    void aReadOnlyExportIsRefusedInOneLine() throws Exception {
        String backing = nbdkit("-r", "memory", "64M");
        ServeProcess.run(dir, "serve", "--cache", files.cache.toString(), "--cache-size", ServeFiles.CACHE_SIZE,
                "--backing", backing, "--listen", "127.0.0.1:0", "--admin", ServeFiles.EPHEMERAL_ADMIN)
                .assertRefused(1, "is a read-only NBD export");
    }

    @Test
    void sigtermAnswersAReadInFlightAndExitsZero() throws Exception {
        Path requests = dir.resolve("requests.log");
        String backing = nbdkit("--filter=log", "--filter=delay", "memory", "64M", "rdelay=1000ms",
                "logfile=" + requests);
        server = serve(backing);
        Path output = dir.resolve("reader.out");
        ProcessBuilder builder = new ProcessBuilder("nbdsh", "-u", server.uri(), "-c",
                "assert h.pread(4096, 0) == bytes(4096)\nprint('read ok')").redirectErrorStream(true)
                .redirectOutput(output.toFile());
        builder.environment().putAll(ExternalTool.SYSTEM_PYTHON);
        Process reader = builder.start();
        try {
            awaitBackingRead(requests, reader);
            assertThat(server.terminate()).as("exit status after SIGTERM").isZero();
            assertThat(reader.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
            assertThat(reader.exitValue()).as(Files.readString(output)).isZero();
            assertThat(Files.readString(output)).contains("read ok");
        } finally {
            reader.destroyForcibly().waitFor();
        }
    }

    @Test
    void sigtermAnswersTheReadInFlightAndGivesEshutdownToANewRequest() throws Exception {
        Path requests = dir.resolve("requests.log");
        String backing = nbdkit("--filter=log", "--filter=delay", "memory", "64M", "rdelay=8000ms",
                "logfile=" + requests);
        server = serve(backing);
        Path go = dir.resolve("go");
        Path output = dir.resolve("client.out");
        String script = String.join("\n",
                "import errno, os, time",
                "buf = nbd.Buffer(4096)",
                "inflight = h.aio_pread(buf, 0)",
                "deadline = time.monotonic() + 60",
                "while not os.path.exists('" + go + "'):",
                "    assert time.monotonic() < deadline, 'the test never said go'",
                "    h.poll(10)",
                "try:",
                "    h.pread(512, 1 << 20)",
                "    raise AssertionError('a request after SIGTERM was served')",
                "except nbd.Error as e:",
                "    assert e.errnum == errno.ESHUTDOWN, e",
                "    print('ESHUTDOWN')",
                "while not h.aio_command_completed(inflight):",
                "    h.poll(-1)",
                "assert buf.to_bytearray() == bytes(4096)",
                "print('in-flight read answered')",
                "h.shutdown()");
        ProcessBuilder builder = new ProcessBuilder("nbdsh", "-u", server.uri(), "-c", script)
                .redirectErrorStream(true).redirectOutput(output.toFile());
        builder.environment().putAll(ExternalTool.SYSTEM_PYTHON);
        Process client = builder.start();
        try {
            awaitBackingRead(requests, client);
            server.signalTerminate();
            long deadline = System.nanoTime() + TIMEOUT.toNanos();
            while (!server.stderr().contains("ESHUTDOWN to new ones")) {
                assertThat(System.nanoTime()).as("the server never began its stop").isLessThan(deadline);
                Thread.sleep(10);
            }
            Files.createFile(go);
            assertThat(client.waitFor(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)).isTrue();
            assertThat(client.exitValue()).as(Files.readString(output)).isZero();
            assertThat(Files.readString(output)).contains("ESHUTDOWN").contains("in-flight read answered");
            assertThat(server.awaitExit()).as("exit status after SIGTERM").isZero();
        } finally {
            client.destroyForcibly().waitFor();
        }
    }

    /**
     * Waits until nbdkit logged a read, i.e. the client's read missed and pcache holds it in flight for the
     * delayed backing. nbdkit's log is the only signal of that, so it is polled, with a bound.
     */
    private static void awaitBackingRead(Path log, Process client) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(log) || !Files.readString(log).contains(" Read id=")) {
            if (!client.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("the read did not reach the backing device");
            }
            Thread.sleep(10);
        }
    }

    private ServeProcess serve(String backing) throws Exception {
        return ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", backing, "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
    }

    private static String nbdsh(String uri, String... lines) throws Exception {
        String script = "import time\n" + String.join("\n", lines);
        return ExternalTool.run(TIMEOUT, ExternalTool.SYSTEM_PYTHON, "nbdsh", "-u", uri, "-c", script)
                .assertSuccess().stdout();
    }

    /**
     * Starts nbdkit on a private unix socket and returns its URI. nbdkit runs {@code --run} once it listens; that
     * command prints the URI (the ready signal) and then waits on stdin, so nbdkit ends when the test closes it.
     */
    private String nbdkit(String... pluginAndFilters) throws Exception {
        List<String> command = ExternalTool.list("nbdkit", "-U", "-");
        command.addAll(List.of(pluginAndFilters));
        command.addAll(List.of("--run", "echo \"$unixsocket\"; cat"));
        Process process = new ProcessBuilder(command)
                .redirectError(dir.resolve("nbdkit-" + nbdkits.size() + ".log").toFile()).start();
        nbdkits.add(process);
        CompletableFuture<String> socket = CompletableFuture.supplyAsync(() -> {
            try {
                return new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))
                        .readLine();
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        String path = socket.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        assertThat(path).as("nbdkit %s started", command).isNotNull().startsWith("/");
        return "nbd+unix:///?socket=" + path;
    }
}
