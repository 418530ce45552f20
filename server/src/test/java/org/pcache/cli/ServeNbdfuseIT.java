package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.pcache.nbd.Ext4OverNbdfuse;

/**
 * A file system on {@code pcache serve} ({@link Ext4OverNbdfuse}), then a clean stop. Needs root, FUSE and loop
 * devices; skips with the reason otherwise.
 */
class ServeNbdfuseIT {

    @TempDir
    Path dir;

    @Test
    void ext4OverNbdfuseOnPcacheSurvivesUnmountFsckAndRemount() throws Exception {
        Ext4OverNbdfuse.assumePossible();
        try (ServeFiles files = new ServeFiles(dir);
             ServeProcess server = ServeProcess.start(dir, files.serve("256M"))) {
            Ext4OverNbdfuse.run(dir, server.uris().get(1), 23);
            assertThat(server.terminate()).as("exit status after SIGTERM").isZero();
        }
    }
}
