package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.admin.AdminClient;
import org.pcache.admin.StatusDocument;
import org.pcache.nbd.ExternalTool;

/**
 * A backing device that fails, end to end: {@code pcache serve} in front of a backing file that nbdkit serves through
 * shell methods failing every write while one trigger file exists and every flush while another does. While the
 * backing fails, clients' writes and flushes keep being absorbed by the cache and read back from it, writeback counts
 * and retries the errors (status shows them), and dirty_tail stays where it is — also once writes reach the file but
 * its flush still fails, since data that is not durable on the backing device is not written back. Once the backing
 * heals, {@code pcache drain} completes and the backing file alone holds exactly what the clients wrote.
 */
class ServeFailingBackingIT {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);
    private static final int MIB = 1 << 20;
    private static final long BACKING_SIZE = 64L * MIB;
    /** Offset, length, byte: the second overwrites part of the first. */
    private static final long[][] BEFORE = {{0, 8 * MIB, 0x11}, {2 * MIB, 3 * MIB, 0x22}, {20 * MIB, 6 * MIB, 0x33}};
    /** Written while writes reach the file but flushes still fail. */
    private static final long[][] DURING = {{40 * MIB, 4 * MIB, 0x44}, {6 * MIB, MIB, 0x55}};

    @TempDir
    Path dir;

    private ServeFiles files;
    private NbdkitProcess nbdkit;
    private ServeProcess server;

    @BeforeEach
    void start() throws Exception {
        ExternalTool.require("qemu-io");
        files = new ServeFiles(dir);
        try (RandomAccessFile backing = new RandomAccessFile(files.backing.toFile(), "rw")) {
            backing.setLength(BACKING_SIZE);
        }
        Files.createFile(failWrites());
        Files.createFile(failFlushes());
        String file = files.backing.toString();
        nbdkit = NbdkitProcess.start(dir.resolve("nbdkit.log"), "eval",
                "get_size=stat -Lc %s " + file,
                "can_write=exit 0",
                "can_flush=exit 0",
                "pread=dd if=" + file + " skip=$4 count=$3 iflag=count_bytes,skip_bytes status=none",
                "pwrite=if [ -e " + failWrites() + " ]; then cat >/dev/null; echo 'EIO write fails' >&2; exit 1; fi;"
                        + " dd of=" + file + " seek=$4 conv=notrunc oflag=seek_bytes status=none",
                "flush=if [ -e " + failFlushes() + " ]; then echo 'EIO flush fails' >&2; exit 1; fi; sync " + file);
        server = ServeProcess.start(dir, "serve", "--cache", files.cache.toString(), "--cache-size",
                ServeFiles.CACHE_SIZE, "--backing", nbdkit.uri(), "--listen", "127.0.0.1:0", "--admin",
                ServeFiles.EPHEMERAL_ADMIN);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        if (nbdkit != null) {
            nbdkit.close();
        }
        if (files != null) {
            files.close();
        }
    }

    @Test
    void writesAreAbsorbedWhileTheBackingFailsAndDrainCompletesOnceItHeals() throws Exception {
        String initialTail;
        try (AdminClient admin = new AdminClient(address(server.admin()))) {
            initialTail = admin.status().dirtyTail();
            qemuIo(writes(BEFORE));
            StatusDocument failing = awaitStatus(admin, "writeback errors while writes fail",
                    status -> status.writeback().errors() > 0);
            assertThat(failing.dirtyTail()).as("dirty_tail while every write fails").isEqualTo(initialTail);
            assertThat(failing.writeback().lastError()).isNotNull();

            Files.delete(failWrites());
            awaitBackingFileWritten();
            long errorsBefore = admin.status().writeback().errors();
            qemuIo(writes(DURING));
            StatusDocument flushFailing = awaitStatus(admin, "more writeback errors while flushes fail",
                    status -> status.writeback().errors() > errorsBefore + 1);
            assertThat(flushFailing.dirtyTail()).as("dirty_tail while writes reach the file but flushes fail")
                    .isEqualTo(initialTail);
            assertThat(flushFailing.writeback().state()).isEqualTo("running");
            assertThat(flushFailing.dirtyBytes()).as("nothing counts as written back").isEqualTo(dirtyBytes());
            String reads = qemuIo(reads(expectedImage()));
            assertThat(reads).as("what the clients wrote, read through the cache").doesNotContain("failed");

            Files.delete(failFlushes());
            ServeProcess.Exit drain = ServeProcess.run(dir, "drain", "--admin", server.admin());
            assertThat(drain.status()).as("drain; stderr: %s", drain.stderr()).isZero();
            StatusDocument drained = admin.status();
            assertThat(drained.dirtyTail()).isEqualTo(drained.keyHead());
            assertThat(drained.dirtyBytes()).isZero();
        }
        assertThat(server.terminate()).isZero();
        server = null;
        nbdkit.close();
        nbdkit = null;
        assertThat(SectorData.readFile(files.backing, 0, (int) BACKING_SIZE)).as("the backing file alone")
                .isEqualTo(expectedImage());
    }

    /** While this file exists, every backing write fails. */
    private Path failWrites() {
        return dir.resolve("fail-writes");
    }

    /** While this file exists, every backing flush fails. */
    private Path failFlushes() {
        return dir.resolve("fail-flushes");
    }

    private String qemuIo(List<String> commands) throws Exception {
        List<String> command = new ArrayList<>(List.of("qemu-io", "-f", "raw", "-t", "none", server.uri()));
        for (String c : commands) {
            command.addAll(List.of("-c", c));
        }
        String out = ExternalTool.run(TIMEOUT, command.toArray(String[]::new)).assertSuccess().stdout();
        assertThat(out).as(out).doesNotContain("error").doesNotContain("failed");
        return out;
    }

    /** qemu-io commands that write the extents, then flush. */
    private static List<String> writes(long[][] extents) {
        List<String> commands = new ArrayList<>();
        for (long[] extent : extents) {
            commands.add("write -P 0x" + Long.toHexString(extent[2]) + " " + extent[0] + " " + extent[1]);
        }
        commands.add("flush");
        return commands;
    }

    /** qemu-io commands that check every MiB of {@code image}, each holding one byte value. */
    private static List<String> reads(byte[] image) {
        List<String> commands = new ArrayList<>();
        for (int off = 0; off < image.length; off += MIB) {
            commands.add("read -P 0x" + Integer.toHexString(image[off] & 0xff) + " " + off + " " + MIB);
        }
        return commands;
    }

    /** Bytes of dirty key records the writes logged (overwritten ones included). */
    private static long dirtyBytes() {
        long bytes = 0;
        for (long[][] extents : new long[][][] {BEFORE, DURING}) {
            for (long[] extent : extents) {
                bytes += extent[1];
            }
        }
        return bytes;
    }

    /** The device after {@link #BEFORE} then {@link #DURING}, later writes winning, zeroes elsewhere. */
    private static byte[] expectedImage() {
        byte[] image = new byte[(int) BACKING_SIZE];
        for (long[][] extents : new long[][][] {BEFORE, DURING}) {
            for (long[] extent : extents) {
                Arrays.fill(image, (int) extent[0], (int) (extent[0] + extent[1]), (byte) extent[2]);
            }
        }
        return image;
    }

    /** Polls status, with a bound: writeback's retries are only visible there. */
    private static StatusDocument awaitStatus(AdminClient admin, String what, Predicate<StatusDocument> condition)
            throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        StatusDocument status = admin.status();
        while (!condition.test(status)) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("status never showed " + what + "; last: " + status);
            }
            Thread.sleep(20);
            status = admin.status();
        }
        return status;
    }

    /**
     * Polls the backing file, with a bound, until writeback's writes reached it: one MiB of it no longer reads as
     * zeroes. Only the first kset in the log gets there while flushes fail, so any of them may.
     */
    private void awaitBackingFileWritten() throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!backingFileWritten()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("writeback's writes never reached the backing file");
            }
            Thread.sleep(20);
        }
    }

    private boolean backingFileWritten() throws Exception {
        for (long[] extent : BEFORE) {
            for (long off = extent[0]; off < extent[0] + extent[1]; off += MIB) {
                if (SectorData.readFile(files.backing, off, 1)[0] != 0) {
                    return true;
                }
            }
        }
        return false;
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }
}
