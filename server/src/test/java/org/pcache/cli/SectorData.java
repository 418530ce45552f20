package org.pcache.cli;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.pcache.nbd.Durability;
import org.pcache.nbd.NbdClient;
import org.pcache.nbd.NbdUri;

/**
 * The data the command integration tests write through a child {@code pcache serve} and look for afterwards: every
 * 8 bytes hold their device offset mixed with a version number, so a misplaced, stale or missing sector shows.
 * Written with the project's own NBD client, one request per MiB.
 */
final class SectorData {

    private static final int PIECE = 1 << 20;
    private static final long TIMEOUT_SECONDS = 60;

    private SectorData() {
    }

    /** The bytes version {@code version} holds at {@code [offset, offset + length)}. */
    static byte[] of(long offset, int length, int version) {
        ByteBuffer data = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < length; i += Long.BYTES) {
            data.putLong(i, (offset + i) * 0x9E3779B97F4A7C15L ^ version);
        }
        return data.array();
    }

    /** Writes version {@code version} of the range through {@code uri}, then flushes: it is durable on return. */
    static void writeAndFlush(String uri, long offset, int length, int version) throws Exception {
        try (NbdClient client = NbdClient.connect(NbdUri.parse(uri))) {
            for (int done = 0; done < length; done += PIECE) {
                int piece = Math.min(PIECE, length - done);
                client.write(offset + done, MemorySegment.ofArray(of(offset + done, piece, version)),
                        Durability.BUFFERED).get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
            client.flush().get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        }
    }

    /** Reads the range through {@code uri}. */
    static byte[] read(String uri, long offset, int length) throws Exception {
        byte[] data = new byte[length];
        try (NbdClient client = NbdClient.connect(NbdUri.parse(uri))) {
            for (int done = 0; done < length; done += PIECE) {
                int piece = Math.min(PIECE, length - done);
                client.read(offset + done, MemorySegment.ofArray(data).asSlice(done, piece))
                        .get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
            }
        }
        return data;
    }

    /** Reads the range straight from a backing file, without pcache. */
    static byte[] readFile(Path file, long offset, int length) throws IOException {
        byte[] data = new byte[length];
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "r")) {
            raf.seek(offset);
            raf.readFully(data);
        }
        return data;
    }
}
