package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The body of {@link NbdClient}'s reader thread: reads simple replies and structured chunks, checks each
 * against the request its handle names (chunk type, length, content inside the request's range, a READ
 * fully covered before DONE), puts read data straight into the caller's buffer (read from the client's
 * {@link NbdTransport}) and completes the request.
 * Any violation is a protocol error that ends the connection, as proto.md asks of clients.
 *
 * <p>Threading: runs on the client's reader thread, which owns the input buffer.
 */
final class ReplyReader implements Runnable {

    /** What the reader reports back to its client. */
    interface Listener {
        /** The request is answered: {@code error} null on success. */
        void completed(ClientRequest request, IOException error);

        /** The connection ended; {@code cause} is null after a clean end of stream. */
        void ended(IOException cause);
    }

    private static final int INPUT_CAPACITY = 64 * 1024;

    private final NbdTransport transport;
    private final InFlightTable table;
    private final boolean structuredReplies;
    /** The server's id of base:allocation, -1 when not negotiated. */
    private final long baseAllocationId;
    private final Listener listener;
    private final ByteBuffer in = ByteBuffer.allocateDirect(INPUT_CAPACITY).flip();

    ReplyReader(NbdTransport transport, InFlightTable table, boolean structuredReplies, long baseAllocationId,
                Listener listener) {
        this.transport = transport;
        this.table = table;
        this.structuredReplies = structuredReplies;
        this.baseAllocationId = baseAllocationId;
        this.listener = listener;
    }

    @Override
    public void run() {
        try {
            while (fill(Integer.BYTES)) {
                int magic = in.getInt();
                if (magic == NbdProtocol.SIMPLE_REPLY_MAGIC) {
                    readSimpleReply();
                } else if (magic == NbdProtocol.STRUCTURED_REPLY_MAGIC) {
                    readChunk();
                } else {
                    throw new NbdProtocolException("reply magic 0x" + Integer.toHexString(magic));
                }
            }
            listener.ended(null);
        } catch (IOException e) {
            listener.ended(e);
        }
    }

    private void readSimpleReply() throws IOException {
        require(NbdProtocol.SIMPLE_REPLY_LENGTH - Integer.BYTES);
        int code = in.getInt();
        ClientRequest request = table.lookup(in.getLong());
        if (code != 0) {
            listener.completed(request, new NbdErrorException(NbdError.decode(code), request.toString()));
            return;
        }
        if (request.command == NbdCommand.BLOCK_STATUS) {
            throw new NbdProtocolException("simple reply to a BLOCK_STATUS (it needs a BLOCK_STATUS chunk)");
        }
        if (request.command == NbdCommand.READ) {
            if (structuredReplies) {
                throw new NbdProtocolException("simple reply to a READ after structured replies were negotiated");
            }
            readInto(request.dst);
        }
        listener.completed(request, null);
    }

    private void readChunk() throws IOException {
        require(NbdProtocol.CHUNK_HEADER_LENGTH - Integer.BYTES);
        ReplyDecoder.Chunk chunk = ReplyDecoder.decodeChunkHeader(in);
        ClientRequest request = table.lookup(chunk.handle());
        if (chunk.isError()) {
            readError(chunk, request);
        } else {
            ReplyDecoder.checkChunkLength(chunk, request.length);
            NbdCommand expected = chunk.type() == ReplyChunk.BLOCK_STATUS ? NbdCommand.BLOCK_STATUS : NbdCommand.READ;
            if (chunk.type() != ReplyChunk.NONE && request.command != expected) {
                throw new NbdProtocolException(chunk.type() + " chunk in the reply to " + request.command);
            }
            readContent(chunk, request);
        }
        if (chunk.done()) {
            if (request.error == null && request.command == NbdCommand.READ && request.received != request.length) {
                throw new NbdProtocolException("READ reply covered " + request.received + " of " + request.length
                        + " bytes");
            }
            if (request.error == null && request.command == NbdCommand.BLOCK_STATUS && request.extents == null) {
                throw new NbdProtocolException("BLOCK_STATUS reply without base:allocation extents");
            }
            listener.completed(request, request.error);
        }
    }

    private void readError(ReplyDecoder.Chunk chunk, ClientRequest request) throws IOException {
        int length = (int) chunk.length();
        require(length);
        ByteBuffer payload = in.slice(in.position(), length);
        in.position(in.position() + length);
        ReplyDecoder.ErrorChunk error = ReplyDecoder.decodeError(chunk, payload);
        if (request.error == null) {
            request.error = new NbdErrorException(error.error(), request
                    + (error.message().isEmpty() ? "" : ": " + error.message()));
        }
    }

    private void readContent(ReplyDecoder.Chunk chunk, ClientRequest request) throws IOException {
        switch (chunk.type()) {
            case OFFSET_DATA -> {
                require(Long.BYTES);
                long dataLength = chunk.length() - Long.BYTES;
                long at = contentOffset(request, in.getLong(), dataLength);
                readInto(request.dst.asSlice(at, dataLength));
                request.received += dataLength;
            }
            case OFFSET_HOLE -> {
                require(Long.BYTES + Integer.BYTES);
                long offset = in.getLong();
                long holeLength = Integer.toUnsignedLong(in.getInt());
                long at = contentOffset(request, offset, holeLength);
                request.dst.asSlice(at, holeLength).fill((byte) 0);
                request.received += holeLength;
            }
            case BLOCK_STATUS -> readBlockStatus(chunk, request);
            case NONE -> {
                // Nothing follows the header.
            }
            case ERROR, ERROR_OFFSET -> throw new IllegalStateException("checked by checkChunkLength");
        }
    }

    /** The descriptors of the base:allocation context, each inside the request; other contexts are skipped. */
    private void readBlockStatus(ReplyDecoder.Chunk chunk, ClientRequest request) throws IOException {
        int length = (int) chunk.length();
        require(length);
        long context = Integer.toUnsignedLong(in.getInt());
        int descriptors = (length - Integer.BYTES) / (2 * Integer.BYTES);
        if (context != baseAllocationId) {
            in.position(in.position() + length - Integer.BYTES);
            return;
        }
        if (request.extents != null) {
            throw new NbdProtocolException("two base:allocation chunks in the reply to " + request);
        }
        List<NbdExport.Extent> extents = new ArrayList<>(descriptors);
        long covered = 0;
        for (int i = 0; i < descriptors; i++) {
            long extentLength = Integer.toUnsignedLong(in.getInt());
            int flags = in.getInt();
            if (extentLength == 0) {
                throw new NbdProtocolException("block status extent of length 0 in the reply to " + request);
            }
            // proto.md: the last extent may reach past the request; it is clipped here.
            long clipped = Math.min(extentLength, request.length - covered);
            if (clipped <= 0) {
                continue;
            }
            extents.add(new NbdExport.Extent(clipped, ReplyDecoder.allocation(flags)));
            covered += clipped;
        }
        request.extents = extents;
    }

    /** Offset inside the request's buffer of a content chunk, which must lie inside the request. */
    private static long contentOffset(ClientRequest request, long offset, long length) throws NbdProtocolException {
        long at = offset - request.offset;
        if (length <= 0 || at < 0 || at > request.length - length) {
            throw new NbdProtocolException("content chunk [" + offset + ", +" + length + ") outside the request ["
                    + request.offset + ", +" + request.length + ")");
        }
        return at;
    }

    /** Copies buffered bytes into {@code dst}, then reads the rest straight from the transport. */
    private void readInto(MemorySegment dst) throws IOException {
        ByteBuffer target = dst.asByteBuffer();
        int buffered = Math.min(in.remaining(), target.remaining());
        target.put(target.position(), in, in.position(), buffered);
        target.position(buffered);
        in.position(in.position() + buffered);
        while (target.hasRemaining()) {
            if (transport.read(target) < 0) {
                throw new NbdProtocolException("connection closed inside read data");
            }
        }
    }

    private void require(int bytes) throws IOException {
        if (!fill(bytes)) {
            throw new NbdProtocolException("connection closed inside a reply");
        }
    }

    /** Buffers at least {@code bytes} bytes; false on end of stream at a message boundary. */
    private boolean fill(int bytes) throws IOException {
        while (in.remaining() < bytes) {
            in.compact();
            int read;
            try {
                read = transport.read(in);
            } finally {
                in.flip();
            }
            if (read < 0) {
                if (in.hasRemaining()) {
                    throw new NbdProtocolException("connection closed inside a reply");
                }
                return false;
            }
        }
        return true;
    }
}
