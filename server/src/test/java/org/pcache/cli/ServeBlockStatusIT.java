package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.ExternalTool;

/**
 * Real block status: a sparse 2 GiB image copied onto pcache (over a fresh sparse backing file) with nbdcopy shows its
 * holes to nbdinfo --map and qemu-img map, and copied back with nbdcopy it is identical and just as sparse.
 */
class ServeBlockStatusIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(120);
    private static final long SIZE = 2L << 30;
    private static final int MIB = 1 << 20;
    /** The data extents of the source image, {offset, length}; everything else is a hole. */
    private static final long[][] DATA = {{7L * MIB, 5 * MIB}, {1310720000L, 192 * 1024}};

    @TempDir
    Path dir;

    private ServeFiles files;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        ExternalTool.require("nbdcopy");
        ExternalTool.require("nbdinfo");
        ExternalTool.require("qemu-img");
        files = new ServeFiles(dir);
        server = ServeProcess.start(dir, files.serve("2G"));
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        files.close();
    }

    @Test
    void aSparseImageCopiedOntoPcacheAndBackStaysIdenticalAndSparse() throws Exception {
        Path source = dir.resolve("source.img");
        long seed = System.nanoTime();
        Random random = new Random(seed);
        try (RandomAccessFile file = new RandomAccessFile(source.toFile(), "rw")) {
            file.setLength(SIZE);
            for (long[] extent : DATA) {
                byte[] data = new byte[(int) extent[1]];
                random.nextBytes(data);
                file.seek(extent[0]);
                file.write(data);
            }
        }
        String uri = server.uri();
        assertThat(map(uri)).as("a fresh sparse backing: all hole").containsExactly("0 " + SIZE + " 3 hole,zero");

        // The backing file is fresh and sparse, so nbdcopy need not zero the holes (and pcache keeps zeroes it is
        // sent as cached data, which block status would then report as data).
        ExternalTool.run(TIMEOUT, "nbdcopy", "--destination-is-zero", source.toString(), uri).assertSuccess();
        assertThat(map(uri)).as("the copied extents are data (cached, dirty), the rest holes of the backing file")
                .containsExactly("0 " + DATA[0][0] + " 3 hole,zero",
                        DATA[0][0] + " " + DATA[0][1] + " 0 data",
                        (DATA[0][0] + DATA[0][1]) + " " + (DATA[1][0] - DATA[0][0] - DATA[0][1]) + " 3 hole,zero",
                        DATA[1][0] + " " + DATA[1][1] + " 0 data",
                        (DATA[1][0] + DATA[1][1]) + " " + (SIZE - DATA[1][0] - DATA[1][1]) + " 3 hole,zero");
        String qemuMap = ExternalTool.run(TIMEOUT, "qemu-img", "map", "--output=json", "-f", "raw", uri)
                .assertSuccess().stdout();
        assertThat(qemuMap).contains("\"start\": 0, \"length\": " + DATA[0][0] + ", \"depth\": 0, \"present\": true, "
                + "\"zero\": true, \"data\": false")
                .contains("\"start\": " + DATA[0][0] + ", \"length\": " + DATA[0][1] + ", \"depth\": 0, "
                        + "\"present\": true, \"zero\": false, \"data\": true");

        Path copy = dir.resolve("copy.img");
        ExternalTool.run(TIMEOUT, "nbdcopy", uri, copy.toString()).assertSuccess();
        assertThat(Files.mismatch(source, copy)).as("the copy back is identical (seed %d)", seed).isEqualTo(-1);
        long data = DATA[0][1] + DATA[1][1];
        assertThat(allocatedBytes(copy)).as("the copy back is sparse: about the data, not 2 GiB")
                .isLessThan(data + 4 * MIB);
    }

    /** nbdinfo --map's lines, blanks squeezed. */
    private static java.util.List<String> map(String uri) throws Exception {
        return ExternalTool.run(TIMEOUT, "nbdinfo", "--map", uri).assertSuccess().stdout().lines()
                .map(line -> line.trim().replaceAll("\\s+", " ")).toList();
    }

    private static long allocatedBytes(Path file) throws Exception {
        String[] out = ExternalTool.run(TIMEOUT, "stat", "--format=%b %B", file.toString()).assertSuccess().stdout()
                .trim().split(" ");
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }
}
