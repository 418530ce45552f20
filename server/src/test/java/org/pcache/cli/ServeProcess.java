package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real {@code pcache serve} process for integration tests: the shaded jar that failsafe names in the system
 * property {@code pcache.jar}, run by the JDK the tests run on. {@link #start} returns once the process printed its
 * ready line; {@link #run} waits for a process that is expected to exit by itself (a refused start).
 */
final class ServeProcess implements AutoCloseable {

    static final Duration START_TIMEOUT = Duration.ofSeconds(60);
    static final Duration STOP_TIMEOUT = Duration.ofSeconds(60);
    private static final String READY_PREFIX = "pcache: serving ";
    private static final AtomicInteger RUNS = new AtomicInteger();

    /** What a finished process printed and returned. */
    record Exit(int status, String stdout, String stderr) {

        /** Lines of stderr that are not log events (those start with a HH:mm:ss.SSS time). */
        List<String> messages() {
            return stderr.lines().filter(line -> !line.matches("^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} .*")).toList();
        }

        /** Asserts a refused start: non-zero status, the one message line, no stack trace anywhere. */
        Exit assertRefused(int expectedStatus, String expectedMessagePart) {
            assertThat(status).as("exit status; stderr:\n%s", stderr).isEqualTo(expectedStatus);
            assertThat(messages()).as("stderr:\n%s", stderr).hasSize(1);
            assertThat(messages().get(0)).startsWith("pcache").contains(expectedMessagePart);
            assertThat(stderr).doesNotContain("\tat ").doesNotContain("Exception");
            assertThat(stdout).as("nothing on stdout for a refused start").isEmpty();
            return this;
        }
    }

    private final Process process;
    private final Path stderr;
    private final String readyLine;

    private ServeProcess(Process process, Path stderr, String readyLine) {
        this.process = process;
        this.stderr = stderr;
        this.readyLine = readyLine;
    }

    /** Starts {@code pcache serve ARGS} in {@code workDir} and waits for its ready line. */
    static ServeProcess start(Path workDir, String... args) throws Exception {
        Path err = workDir.resolve("serve-" + RUNS.incrementAndGet() + ".err");
        Process process = builder(workDir, args).redirectError(err.toFile()).start();
        CompletableFuture<String> ready = new CompletableFuture<>();
        Thread.ofPlatform().daemon().name("serve-stdout").start(() -> readStdout(process, ready));
        try {
            String line = ready.get(START_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
            return new ServeProcess(process, err, line);
        } catch (ExecutionException | TimeoutException e) {
            process.destroyForcibly().waitFor();
            throw new AssertionError("pcache serve " + String.join(" ", args) + " did not become ready: "
                    + e.getMessage() + "\nstderr:\n" + Files.readString(err), e);
        }
    }

    /** Runs {@code pcache serve ARGS} (or other subcommands) to its end, e.g. a start that must be refused. */
    static Exit run(Path workDir, String... args) throws Exception {
        return run(Map.of(), workDir, args);
    }

    /** As {@link #run(Path, String...)}, with {@code environment} added to the child's. */
    static Exit run(Map<String, String> environment, Path workDir, String... args) throws Exception {
        Path out = workDir.resolve("run-" + RUNS.incrementAndGet() + ".out");
        Path err = workDir.resolve("run-" + RUNS.get() + ".err");
        List<String> command = new ArrayList<>(Arrays.asList(args));
        ProcessBuilder builder = builder(workDir, command.toArray(String[]::new)).redirectOutput(out.toFile())
                .redirectError(err.toFile());
        builder.environment().putAll(environment);
        Process process = builder.start();
        if (!process.waitFor(START_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError("pcache " + command + " did not exit; stderr:\n" + Files.readString(err));
        }
        return new Exit(process.exitValue(), Files.readString(out), Files.readString(err));
    }

    /** Starts {@code pcache ARGS} with stdout to {@code out} and stderr to {@code err}, for a command that runs on. */
    static Process spawn(Path workDir, Path out, Path err, String... args) throws IOException {
        return builder(workDir, args).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
    }

    private static ProcessBuilder builder(Path workDir, String... args) {
        String jar = System.getProperty("pcache.jar");
        assertThat(jar).as("system property pcache.jar (set by failsafe)").isNotNull();
        assertThat(Path.of(jar)).as("the shaded jar, built in the package phase").exists();
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "--enable-native-access=ALL-UNNAMED", "-Xmx1g", "-jar", jar));
        command.addAll(Arrays.asList(args));
        return new ProcessBuilder(command).directory(workDir.toFile())
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()));
    }

    private static void readStdout(Process process, CompletableFuture<String> ready) {
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                if (line.startsWith(READY_PREFIX)) {
                    ready.complete(line);
                } else {
                    ready.completeExceptionally(new IOException("unexpected stdout line: " + line));
                }
            }
            ready.completeExceptionally(new IOException("exited with status " + process.waitFor()
                    + " before it was ready"));
        } catch (IOException | InterruptedException e) {
            ready.completeExceptionally(e);
        }
    }

    /** The line printed when ready. */
    String readyLine() {
        return readyLine;
    }

    /** The NBD URIs of the ready line, in the order of the listening addresses. */
    List<String> uris() {
        String rest = readyLine.substring(READY_PREFIX.length());
        return List.of(rest.substring(0, rest.indexOf(" (")).split(" "));
    }

    /** The admin endpoint's HOST:PORT, as the ready line names it: what {@code --admin} takes. */
    String admin() {
        int start = readyLine.lastIndexOf(", admin ") + ", admin ".length();
        return readyLine.substring(start, readyLine.length() - 1);
    }

    /** The first URI (TCP when the server listens on TCP). */
    String uri() {
        return uris().get(0);
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** The server's process id. */
    long pid() {
        return process.pid();
    }

    String stderr() throws IOException {
        return Files.readString(stderr);
    }

    /** Sends SIGTERM and returns the exit status. */
    int terminate() throws Exception {
        signalTerminate();
        return awaitExit();
    }

    /** Sends SIGTERM without waiting. */
    void signalTerminate() {
        process.destroy();
    }

    /** Waits (bounded) for the process to exit and returns its status. */
    int awaitExit() throws Exception {
        if (!process.waitFor(STOP_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly().waitFor();
            throw new AssertionError("pcache serve did not stop after SIGTERM; stderr:\n" + stderr());
        }
        return process.exitValue();
    }

    /** Sends SIGKILL (kill -9) and waits until the process is gone. */
    void kill() throws InterruptedException {
        process.destroyForcibly().waitFor();
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            kill();
        }
    }
}
