package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * A request {@link NbdClient} has sent and not yet seen answered.
 *
 * <p>Threading: created and registered by the submitting thread; {@code received} and {@code error} are
 * written only by the reply reader; the handle is set under the {@link InFlightTable} lock before sending.
 */
final class ClientRequest {

    final NbdCommand command;
    final long offset;
    final long length;
    /** Where a READ's data goes; null for other commands. */
    final MemorySegment dst;
    final CompletableFuture<Void> future = new CompletableFuture<>();
    long handle;
    /** System.nanoTime() just before sending, for the request timeout. */
    long sentNanos;
    /** Bytes of a READ covered by content chunks so far. */
    long received;
    /** The base:allocation runs of a BLOCK_STATUS reply; null for other commands and until the chunk came. */
    List<NbdExport.Extent> extents;
    /** First error chunk of a structured reply. */
    NbdErrorException error;

    ClientRequest(NbdCommand command, long offset, long length, MemorySegment dst) {
        this.command = command;
        this.offset = offset;
        this.length = length;
        this.dst = dst;
    }

    @Override
    public String toString() {
        return command + " offset=" + offset + " length=" + length;
    }
}
