package org.pcache.nbd;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Decodes the server's transmission-phase replies for the client: reply headers and error chunk payloads,
 * checking every length against what the chunk type allows before anything is allocated or read. Pure;
 * reads from the buffers it is given.
 *
 * <p>Limits: an error chunk longer than {@link #MAX_ERROR_CHUNK_LENGTH} is a protocol error.
 */
final class ReplyDecoder {

    /** An error chunk carries a 4096-byte message at most (proto.md), its prefix and an optional offset. */
    /** Longest BLOCK_STATUS chunk a client takes: its context id and 4096 descriptors. */
    static final int MAX_BLOCK_STATUS_CHUNK_LENGTH = Integer.BYTES + 4096 * 2 * Integer.BYTES;
    static final int MAX_ERROR_CHUNK_LENGTH = NbdProtocol.ERROR_PREFIX + NbdProtocol.MAX_STRING_LENGTH + Long.BYTES;

    /**
     * A structured reply chunk header.
     *
     * @param type null for a type this implementation does not know; see {@code rawType}
     */
    record Chunk(int flags, ReplyChunk type, int rawType, long handle, long length) {

        boolean done() {
            return (flags & NbdProtocol.REPLY_FLAG_DONE) != 0;
        }

        boolean isError() {
            return (rawType & ReplyChunk.ERROR_BIT) != 0;
        }
    }

    /** The payload of an error chunk. */
    record ErrorChunk(NbdError error, String message) {
    }

    private ReplyDecoder() {
    }

    /** Decodes a chunk header whose magic the caller has already read and checked. */
    static Chunk decodeChunkHeader(ByteBuffer in) throws NbdProtocolException {
        int flags = Short.toUnsignedInt(in.getShort());
        int rawType = Short.toUnsignedInt(in.getShort());
        long handle = in.getLong();
        long length = Integer.toUnsignedLong(in.getInt());
        ReplyChunk type = ReplyChunk.tryDecode(rawType);
        Chunk chunk = new Chunk(flags, type, rawType, handle, length);
        if (chunk.isError()) {
            if (length < NbdProtocol.ERROR_PREFIX || length > MAX_ERROR_CHUNK_LENGTH) {
                throw new NbdProtocolException("error chunk of " + length + " bytes (expected "
                        + NbdProtocol.ERROR_PREFIX + ".." + MAX_ERROR_CHUNK_LENGTH + ")");
            }
        } else if (type == null) {
            // proto.md: an unknown type without the error bit calls for a hard disconnect.
            throw new NbdProtocolException("unknown reply chunk type " + rawType);
        }
        return chunk;
    }

    /** Checks the length of a non-error chunk of a request for {@code requestLength} bytes. */
    static void checkChunkLength(Chunk chunk, long requestLength) throws NbdProtocolException {
        long length = chunk.length();
        boolean valid = switch (chunk.type()) {
            case NONE -> length == 0 && chunk.done();
            case OFFSET_DATA -> length > NbdProtocol.OFFSET_DATA_PREFIX
                    && length - NbdProtocol.OFFSET_DATA_PREFIX <= requestLength;
            case OFFSET_HOLE -> length == Long.BYTES + Integer.BYTES;
            case BLOCK_STATUS -> length >= 3 * Integer.BYTES && length <= MAX_BLOCK_STATUS_CHUNK_LENGTH
                    && (length - Integer.BYTES) % (2 * Integer.BYTES) == 0;
            case ERROR, ERROR_OFFSET -> false;
        };
        if (!valid) {
            throw new NbdProtocolException(chunk.type() + " chunk of " + length + " bytes with flags "
                    + chunk.flags() + " for a request of " + requestLength + " bytes");
        }
    }

    /** The allocation a base:allocation descriptor's status flags say. */
    static NbdExport.Allocation allocation(int flags) {
        if ((flags & NbdProtocol.STATE_HOLE) != 0) {
            return NbdExport.Allocation.HOLE;
        }
        return (flags & NbdProtocol.STATE_ZERO) != 0 ? NbdExport.Allocation.ZERO : NbdExport.Allocation.DATA;
    }

    /** Decodes an error chunk payload (the whole {@code length} bytes of it). */
    static ErrorChunk decodeError(Chunk chunk, ByteBuffer payload) throws NbdProtocolException {
        int code = payload.getInt();
        int messageLength = Short.toUnsignedInt(payload.getShort());
        int trailing = chunk.type() == ReplyChunk.ERROR_OFFSET ? Long.BYTES : 0;
        if (messageLength > payload.remaining() - trailing) {
            throw new NbdProtocolException("error message of " + messageLength + " bytes in a chunk with "
                    + (payload.remaining() - trailing) + " bytes for it");
        }
        if (code == 0) {
            throw new NbdProtocolException("error chunk with error code 0");
        }
        byte[] message = new byte[messageLength];
        payload.get(message);
        return new ErrorChunk(NbdError.decode(code), new String(message, StandardCharsets.UTF_8));
    }
}
