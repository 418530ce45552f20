package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Coverage-guided fuzzing of the NBD client's reply decoder ({@link ReplyReader} with {@link ReplyDecoder}): a
 * server's byte stream answering up to eight requests in flight. Whatever the bytes, the reader ends the connection
 * exactly once, cleanly or with an {@link NbdProtocolException}, completes a request at most once, writes read data
 * only inside the request's buffer, and throws nothing else.
 *
 * <p>Input: byte 0 bit 0 structured replies, bits 1-3 the request count - 1; byte 1 the largest read the transport
 * returns; then per request a command byte and a 16-bit length (in 512-byte units + 1 for reads); then the stream.
 * Handles are the table's: generation 1, slot = the request's index in reverse order of registration.
 */
class ReplyReaderFuzzTest {

    private static final NbdCommand[] COMMANDS = {NbdCommand.READ, NbdCommand.WRITE, NbdCommand.FLUSH,
            NbdCommand.TRIM, NbdCommand.WRITE_ZEROES, NbdCommand.BLOCK_STATUS, NbdCommand.CACHE};
    private static final long BASE_ALLOCATION_ID = 1;

    @FuzzTest(maxDuration = "30s")
    void repliesEndTheConnectionOnlyWithAProtocolError(byte[] input) {
        ByteBuffer header = ByteBuffer.wrap(input);
        if (header.remaining() < 2) {
            return;
        }
        int flags = header.get();
        boolean structured = (flags & 1) != 0;
        int count = ((flags >> 1) & 7) + 1;
        int maxRead = Byte.toUnsignedInt(header.get()) + 1;
        InFlightTable table = new InFlightTable(8);
        List<ClientRequest> requests = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < count && header.remaining() >= 3; i++) {
                NbdCommand command = COMMANDS[Byte.toUnsignedInt(header.get()) % COMMANDS.length];
                long length = (Short.toUnsignedLong(header.getShort()) % 256 + 1) * 512;
                MemorySegment dst = command == NbdCommand.READ ? arena.allocate(length) : null;
                ClientRequest request = new ClientRequest(command, (long) i << 20, length, dst);
                table.register(request);
                requests.add(request);
            }
            byte[] stream = new byte[header.remaining()];
            header.get(stream);
            Listener listener = new Listener(table);
            new ReplyReader(new ScriptedTransport(stream, maxRead), table, structured, BASE_ALLOCATION_ID, listener)
                    .run();
            assertThat(listener.ends).as("ended once").hasSize(1);
            IOException cause = listener.ends.getFirst();
            if (cause != null) {
                assertThat(cause).isInstanceOf(NbdProtocolException.class);
                assertThat(cause.getMessage()).isNotBlank();
            }
        }
    }

    /** What NbdClient's listener does with the table: a completed request leaves it. */
    private static final class Listener implements ReplyReader.Listener {
        private final InFlightTable table;
        private final Set<ClientRequest> completed = new HashSet<>();
        private final List<IOException> ends = new ArrayList<>();

        Listener(InFlightTable table) {
            this.table = table;
        }

        @Override
        public void completed(ClientRequest request, IOException error) {
            assertThat(completed.add(request)).as("%s completed twice", request).isTrue();
            assertThat(table.remove(request)).as("%s was in flight", request).isTrue();
        }

        @Override
        public void ended(IOException cause) {
            ends.add(cause);
        }
    }
}
