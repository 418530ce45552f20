package org.pcache.example;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Runs docs/library.md's example, twice on the same files (format, then replay), and checks that the guide quotes
 * the example exactly, so neither can drift from the other.
 */
class LibraryExampleTest {

    private static final Path EXAMPLE = Path.of("src/test/java/org/pcache/example/LibraryExample.java");
    private static final Path GUIDE = Path.of("../docs/library.md");
    private static final String BEGIN = "// tag::example[]\n";
    private static final String END = "// end::example[]\n";

    private final Path cacheFile = Path.of("/dev/shm", "pcache-library-example-" + ProcessHandle.current().pid());
    private final Path backingFile = Path.of("/dev/shm", "pcache-library-backing-" + ProcessHandle.current().pid());

    @AfterEach
    void deleteFiles() throws IOException {
        Files.deleteIfExists(cacheFile);
        Files.deleteIfExists(backingFile);
    }

    @Test
    void theExampleFormatsThenReplaysAndWritesBack() throws IOException {
        Files.write(backingFile, new byte[64 << 20]);

        assertThat(LibraryExample.run(cacheFile, backingFile, (byte) 'A')).as("a new backing file").isZero();
        assertThat(LibraryExample.run(cacheFile, backingFile, (byte) 'B')).as("what the first run wrote")
                .isEqualTo((byte) 'A');
        assertThat(Files.readAllBytes(backingFile)[0]).as("drained to the backing file").isEqualTo((byte) 'B');
    }

    @Test
    void theGuideQuotesTheExampleVerbatim() throws IOException {
        String source = Files.readString(EXAMPLE);
        String example = source.substring(source.indexOf(BEGIN) + BEGIN.length(), source.indexOf(END));
        String guide = Files.readString(GUIDE);
        String fence = "```java\n";
        int start = guide.indexOf(fence + "import org.pcache.");
        assertThat(start).as("the guide's example block").isNotNegative();
        String quoted = guide.substring(start + fence.length(), guide.indexOf("```\n", start + fence.length()));
        assertThat(quoted).isEqualTo(example);
    }
}
