package org.pcache.nbd;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Runs the NBD client programs the integration tests drive, with a timeout, and kills them if it passes. */
public final class ExternalTool {

    /** Debian's python3, which has the nbd module nbdsh needs, ahead of any other on PATH. */
    public static final Map<String, String> SYSTEM_PYTHON = Map.of("PATH", "/usr/bin:" + System.getenv("PATH"));

    /** What a finished program printed and returned. */
    public record Result(List<String> command, int exit, String stdout, String stderr) {

        public Result assertSuccess() {
            if (exit != 0) {
                throw new AssertionError(String.join(" ", command) + " exited " + exit + "\nstdout:\n" + stdout
                        + "\nstderr:\n" + stderr);
            }
            return this;
        }
    }

    private ExternalTool() {
    }

    /** Skips the calling test, saying why, when {@code program} is not installed. */
    public static void require(String program) {
        boolean found = false;
        for (String directory : System.getenv("PATH").split(File.pathSeparator)) {
            found |= Files.isExecutable(Path.of(directory, program));
        }
        if (!found) {
            System.out.println("SKIPPED: " + program + " is not installed (apt-get install the package the README"
                    + " lists)");
        }
        assumeTrue(found, program + " is not installed");
    }

    public static Result run(Duration timeout, Map<String, String> environment, String... command)
            throws IOException, InterruptedException {
        Path stdout = Files.createTempFile("nbd-tool", ".out");
        Path stderr = Files.createTempFile("nbd-tool", ".err");
        ProcessBuilder builder = new ProcessBuilder(command).redirectOutput(stdout.toFile())
                .redirectError(stderr.toFile()).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        builder.environment().putAll(environment);
        Process process = builder.start();
        try {
            if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError(String.join(" ", command) + " did not finish within " + timeout
                        + "\nstderr:\n" + Files.readString(stderr));
            }
            return new Result(List.of(command), process.exitValue(), Files.readString(stdout),
                    Files.readString(stderr));
        } finally {
            process.destroyForcibly();
            process.waitFor();
            Files.deleteIfExists(stdout);
            Files.deleteIfExists(stderr);
        }
    }

    public static Result run(Duration timeout, String... command) throws IOException, InterruptedException {
        return run(timeout, Map.of(), command);
    }

    public static List<String> list(String... parts) {
        return new ArrayList<>(List.of(parts));
    }
}
