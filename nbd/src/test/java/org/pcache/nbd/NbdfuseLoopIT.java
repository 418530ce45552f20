package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A file system on our server ({@link Ext4OverNbdfuse}) serving memory. Needs root, FUSE and loop devices; skips with
 * the reason otherwise.
 */
class NbdfuseLoopIT {

    private static final long SIZE = 256L << 20;

    @TempDir
    Path dir;

    @Test
    void ext4OnALoopDeviceOverNbdfuseSurvivesUnmountFsckAndRemount() throws Exception {
        Ext4OverNbdfuse.assumePossible();
        try (MemoryExport memory = new MemoryExport("disk", SIZE);
             NbdServer server = new NbdServer(memory, NbdServer.Options.defaults()
                     .withAddresses(UnixDomainSocketAddress.of(dir.resolve("nbd.sock"))))) {
            server.start();
            Ext4OverNbdfuse.run(dir, NbdUri.of(server.boundAddresses().get(0), "disk").toString(), 11);
            assertThat(memory.flushes()).as("fsync and unmount flush through nbdfuse").isPositive();
        }
    }
}
