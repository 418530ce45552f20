package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A file system on an NBD export: nbdfuse exposes the export as a file (over four multi-conn connections, flushing on
 * one of them), a loop device makes it a block device, and ext4 is made, filled, unmounted, checked, mounted again and
 * read back. Shared by the tests that run it against our server and against {@code pcache serve}.
 */
public final class Ext4OverNbdfuse {

    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private Ext4OverNbdfuse() {
    }

    /** Skips the calling test, saying why, unless the tools, root, FUSE and loop devices are all there. */
    public static void assumePossible() {
        for (String program : new String[] {"nbdfuse", "fusermount3", "losetup", "mkfs.ext4", "e2fsck", "mount",
                "umount"}) {
            ExternalTool.require(program);
        }
        boolean possible = "root".equals(System.getProperty("user.name")) && Files.exists(Path.of("/dev/fuse"))
                && Files.exists(Path.of("/dev/loop-control"));
        if (!possible) {
            System.out.println("SKIPPED: needs root, /dev/fuse and /dev/loop-control");
        }
        assumeTrue(possible, "needs root, /dev/fuse and /dev/loop-control");
    }

    /** Runs the whole file-system round trip on {@code uri}, with mount points under {@code dir}. */
    public static void run(Path dir, String uri, long seed) throws Exception {
        Path fuse = Files.createDirectory(dir.resolve("fuse"));
        Path mountPoint = Files.createDirectory(dir.resolve("fs"));
        Path image = fuse.resolve("disk.raw");
        Path pidFile = dir.resolve("nbdfuse.pid");
        Process nbdfuse = new ProcessBuilder("nbdfuse", "-P", pidFile.toString(), image.toString(), uri)
                .redirectErrorStream(true).redirectOutput(dir.resolve("nbdfuse.log").toFile()).start();
        String loop = null;
        boolean mounted = false;
        try {
            awaitFile(pidFile, nbdfuse);
            loop = ExternalTool.run(TIMEOUT, "losetup", "-f", "--show", image.toString()).assertSuccess().stdout()
                    .trim();
            ExternalTool.run(TIMEOUT, "mkfs.ext4", "-q", "-F", loop).assertSuccess();
            ExternalTool.run(TIMEOUT, "mount", loop, mountPoint.toString()).assertSuccess();
            mounted = true;
            List<byte[]> contents = new ArrayList<>();
            SplittableRandom random = new SplittableRandom(seed);
            for (int i = 0; i < 8; i++) {
                byte[] bytes = new byte[(1 << 20) + i * 1536];
                random.nextBytes(bytes);
                contents.add(bytes);
                Files.write(mountPoint.resolve("file" + i), bytes);
            }
            ExternalTool.run(TIMEOUT, "umount", mountPoint.toString()).assertSuccess();
            mounted = false;
            ExternalTool.run(TIMEOUT, "e2fsck", "-fn", loop).assertSuccess();
            ExternalTool.run(TIMEOUT, "mount", loop, mountPoint.toString()).assertSuccess();
            mounted = true;
            for (int i = 0; i < contents.size(); i++) {
                assertThat(Files.readAllBytes(mountPoint.resolve("file" + i))).isEqualTo(contents.get(i));
            }
        } finally {
            if (mounted) {
                ExternalTool.run(TIMEOUT, "umount", mountPoint.toString());
            }
            if (loop != null && loop.startsWith("/dev/")) {
                ExternalTool.run(TIMEOUT, "losetup", "-d", loop);
            }
            ExternalTool.run(TIMEOUT, "fusermount3", "-u", fuse.toString());
            // nbdfuse exits by itself once unmounted.
            if (!nbdfuse.waitFor(10, TimeUnit.SECONDS)) {
                nbdfuse.destroyForcibly().waitFor();
            }
        }
    }

    /** nbdfuse writes its pid file once the file is mounted; there is no other signal to wait on. */
    private static void awaitFile(Path file, Process process) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (!Files.exists(file) || Files.size(file) == 0) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                throw new AssertionError("nbdfuse did not mount " + file);
            }
            Thread.sleep(10);
        }
    }
}
