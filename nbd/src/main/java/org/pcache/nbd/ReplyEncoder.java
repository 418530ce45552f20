package org.pcache.nbd;

import static org.pcache.nbd.NbdProtocol.BLOCK_DESCRIPTOR_LENGTH;
import static org.pcache.nbd.NbdProtocol.CHUNK_HEADER_LENGTH;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Encodes the server's transmission-phase replies: simple replies and structured reply chunks (OFFSET_DATA
 * header, ERROR, BLOCK_STATUS). Read data is not copied: the caller sends it after the header this
 * writes. Pure; writes into the buffer it is given.
 *
 * <p>Limits: an error message is cut to {@link #MAX_MESSAGE_LENGTH} bytes and a block-status reply carries
 * at most {@link #MAX_EXTENTS} descriptors (proto.md lets the server describe less than was asked), so one
 * encoded reply never exceeds {@link #MAX_REPLY_HEADER_LENGTH} bytes.
 */
final class ReplyEncoder {

    static final int MAX_MESSAGE_LENGTH = 512;
    static final int MAX_EXTENTS = 1024;
    static final int MAX_REPLY_HEADER_LENGTH = CHUNK_HEADER_LENGTH + Math.max(
            NbdProtocol.ERROR_PREFIX + MAX_MESSAGE_LENGTH, Integer.BYTES + MAX_EXTENTS * BLOCK_DESCRIPTOR_LENGTH);

    private ReplyEncoder() {
    }

    /** A simple reply; {@code error} null means success. For a successful READ the data follows. */
    static void encodeSimple(ByteBuffer out, long handle, NbdError error) {
        out.putInt(NbdProtocol.SIMPLE_REPLY_MAGIC).putInt(error == null ? 0 : error.code()).putLong(handle);
    }

    /** The final OFFSET_DATA chunk of a read, up to its data: the whole read is one chunk, so DF always holds. */
    static void encodeOffsetData(ByteBuffer out, long handle, long offset, int dataLength) {
        chunkHeader(out, ReplyChunk.OFFSET_DATA, handle, NbdProtocol.OFFSET_DATA_PREFIX + dataLength);
        out.putLong(offset);
    }

    /** A final ERROR chunk with a human-readable message. */
    static void encodeError(ByteBuffer out, long handle, NbdError error, String message) {
        byte[] text = message.getBytes(StandardCharsets.UTF_8);
        int length = Math.min(text.length, MAX_MESSAGE_LENGTH);
        chunkHeader(out, ReplyChunk.ERROR, handle, NbdProtocol.ERROR_PREFIX + length);
        out.putInt(error.code()).putShort((short) length).put(text, 0, length);
    }

    /**
     * The final BLOCK_STATUS chunk for one context. Extents are clipped so that they never describe more than
     * {@code requestLength} bytes; with REQ_ONE only the first is sent (proto.md "NBD_REPLY_TYPE_BLOCK_STATUS").
     */
    static void encodeBlockStatus(ByteBuffer out, long handle, int contextId, List<NbdExport.Extent> extents,
                                  long requestLength, boolean reqOne) {
        int lengthPosition = out.position() + CHUNK_HEADER_LENGTH - Integer.BYTES;
        chunkHeader(out, ReplyChunk.BLOCK_STATUS, handle, 0);
        out.putInt(contextId);
        int limit = reqOne ? 1 : MAX_EXTENTS;
        long remaining = requestLength;
        int count = 0;
        for (int i = 0; i < extents.size() && count < limit && remaining > 0; i++) {
            NbdExport.Extent extent = extents.get(i);
            int length = (int) Math.min(extent.length(), remaining);
            out.putInt(length).putInt(extent.allocation().flags());
            remaining -= length;
            count++;
        }
        out.putInt(lengthPosition, Integer.BYTES + count * BLOCK_DESCRIPTOR_LENGTH);
    }

    private static void chunkHeader(ByteBuffer out, ReplyChunk type, long handle, int length) {
        out.putInt(NbdProtocol.STRUCTURED_REPLY_MAGIC)
                .putShort((short) NbdProtocol.REPLY_FLAG_DONE)
                .putShort((short) type.type())
                .putLong(handle)
                .putInt(length);
    }
}
