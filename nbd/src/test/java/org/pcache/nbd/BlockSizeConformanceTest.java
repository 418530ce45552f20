package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The block sizes the server advertises (minimum 1, maximum 64 MiB), over raw sockets with simple replies, the way
 * the NBD project's test client sends them: reads at byte offsets of odd lengths (its oversize test), writes and
 * reads far over 32 MiB (its huge integrity test), and the refusal just past the maximum.
 */
class BlockSizeConformanceTest {

    private static final long SIZE = 100L << 20;

    private final MemoryExport memory = new MemoryExport("disk", SIZE);
    private NbdServer server;

    @BeforeEach
    void start() throws Exception {
        server = new NbdServer(memory, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop();
        memory.close();
    }

    @Test
    void readsAtByteOffsetsOfOddLengthsAreAnsweredWithTheirData() throws Exception {
        MemorySegment contents = memory.contents();
        for (long i = 0; i < 4 << 20; i++) {
            contents.set(ValueLayout.JAVA_BYTE, i, (byte) (i * 7 + i / 251));
        }
        try (RawConnection client = RawConnection.negotiate(server.boundAddresses().getFirst())) {
            long[][] reads = {{0, 1 << 20}, {1, (1 << 20) + 14}, {2, (2 << 20) + 28}, {4095, 3}};
            for (int handle = 0; handle < reads.length; handle++) {
                long offset = reads[handle][0];
                int length = (int) reads[handle][1];
                client.request(NbdCommand.READ, handle, offset, length);
                assertThat(client.reply(handle)).as("read [%d, +%d)", offset, length).isZero();
                ByteBuffer data = client.readFully(length);
                assertThat(MemorySegment.ofBuffer(data).mismatch(contents.asSlice(offset, length))).isEqualTo(-1);
            }
        }
    }

    @Test
    void writesAndReadsUpTo64MibAtAnyOffsetRoundTrip() throws Exception {
        long seed = System.nanoTime();
        Random random = new Random(seed);
        try (RawConnection client = RawConnection.negotiate(server.boundAddresses().getFirst())) {
            int[] lengths = {48_000_000 + 1, 64 << 20, 33 << 20};
            for (int handle = 0; handle < lengths.length; handle++) {
                int length = lengths[handle];
                long offset = random.nextInt((int) (SIZE - length));
                byte[] payload = new byte[length];
                random.nextBytes(payload);
                client.write(handle, offset, ByteBuffer.wrap(payload));
                assertThat(client.reply(handle)).as("write [%d, +%d), seed %d", offset, length, seed).isZero();
                client.request(NbdCommand.READ, 100 + handle, offset, length);
                assertThat(client.reply(100 + handle)).isZero();
                assertThat(client.readFully(length)).as("seed %d", seed).isEqualTo(ByteBuffer.wrap(payload));
            }
        }
    }

    @Test
    void readAndWriteJustOver64MibAreEinvalAndTheStreamStaysInStep() throws Exception {
        try (RawConnection client = RawConnection.negotiate(server.boundAddresses().getFirst())) {
            client.request(NbdCommand.READ, 1, 0, NbdProtocol.MAX_REQUEST_LENGTH + 1L);
            assertThat(client.reply(1)).isEqualTo(NbdError.EINVAL.code());
            client.write(2, 0, ByteBuffer.allocate(NbdProtocol.MAX_REQUEST_LENGTH + 1));
            assertThat(client.reply(2)).isEqualTo(NbdError.EINVAL.code());
            client.request(NbdCommand.READ, 3, 1, 1);
            assertThat(client.reply(3)).as("the refused payload was drained").isZero();
            client.readFully(1);
        }
    }
}
