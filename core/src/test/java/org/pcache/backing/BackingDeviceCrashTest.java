package org.pcache.backing;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Power cuts under a {@link BackingDevice}: what {@link BackingDevice#flush()} promises, with {@link LossyEngine}. */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class BackingDeviceCrashTest {

    private static final int SECTOR = LossyEngine.SECTOR_SIZE;
    private static final int BLOCK = 8 * SECTOR;
    private static final int BLOCKS = 16;
    private static final int SEEDS = 32;
    private static final byte FLUSHED = 0x11;
    private static final byte UNFLUSHED = 0x22;

    @Test
    void flushedWritesSurviveACrashAndUnflushedOnesMayNot() throws Exception {
        int unflushedSectorsLost = 0;
        int unflushedSectorsKept = 0;
        for (long seed = 0; seed < SEEDS; seed++) {
            byte[] image = new byte[BLOCKS * BLOCK];
            try (MemoryEngine disk = new MemoryEngine((long) BLOCKS * BLOCK)) {
                LossyEngine lossy = new LossyEngine(disk);
                try (BackingDevice device = BackingDevice.start(lossy)) {
                    // Blocks 0..11 flushed; then blocks 8..15 rewritten without a flush.
                    writeAll(device, 0, 12, FLUSHED);
                    device.flush();
                    writeAll(device, 8, 16, UNFLUSHED);
                }
                lossy.crash(seed);
                try (BackingDevice rebooted = BackingDevice.start(lossy)) {
                    rebooted.read(0, MemorySegment.ofArray(image));
                }
            }
            for (int sector = 0; sector < BLOCKS * BLOCK / SECTOR; sector++) {
                byte[] bytes = Arrays.copyOfRange(image, sector * SECTOR, (sector + 1) * SECTOR);
                int block = sector * SECTOR / BLOCK;
                if (block < 8) {
                    assertThat(bytes).as("flushed sector %d (seed %d)", sector, seed).containsOnly(FLUSHED);
                } else if (block < 12) {
                    assertThat(bytes).as("flushed then rewritten sector %d (seed %d)", sector, seed)
                            .containsOnly(bytes[0]);
                    assertThat(bytes[0]).as("sector %d (seed %d)", sector, seed).isIn(FLUSHED, UNFLUSHED);
                } else {
                    assertThat(bytes).as("unflushed sector %d (seed %d)", sector, seed).containsOnly(bytes[0]);
                    assertThat(bytes[0]).as("sector %d (seed %d)", sector, seed).isIn((byte) 0, UNFLUSHED);
                }
                if (block >= 8) {
                    if (bytes[0] == UNFLUSHED) {
                        unflushedSectorsKept++;
                    } else {
                        unflushedSectorsLost++;
                    }
                }
            }
        }
        assertThat(unflushedSectorsLost).as("unflushed sectors lost over %d seeds", SEEDS).isPositive();
        assertThat(unflushedSectorsKept).as("unflushed sectors kept over %d seeds", SEEDS).isPositive();
    }

    private static void writeAll(BackingDevice device, int fromBlock, int toBlock, byte value) throws Exception {
        CountDownLatch done = new CountDownLatch(toBlock - fromBlock);
        Queue<BackingIoException> errors = new ConcurrentLinkedQueue<>();
        for (int block = fromBlock; block < toBlock; block++) {
            byte[] bytes = new byte[BLOCK];
            Arrays.fill(bytes, value);
            device.submit(new MemoryRequest(BackingOp.WRITE, MemorySegment.ofArray(bytes), (long) block * BLOCK,
                    (request, error) -> {
                        if (error != null) {
                            errors.add(error);
                        }
                        done.countDown();
                    }));
        }
        assertThat(done.await(10, TimeUnit.SECONDS)).isTrue();
        assertThat(errors).isEmpty();
    }
}
