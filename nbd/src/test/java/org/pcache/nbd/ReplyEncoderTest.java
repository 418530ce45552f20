package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.Test;

class ReplyEncoderTest {

    private final ByteBuffer out = ByteBuffer.allocate(ReplyEncoder.MAX_REPLY_HEADER_LENGTH);

    @Test
    void simpleReplyCarriesMagicErrorAndHandle() {
        ReplyEncoder.encodeSimple(out, 0x1122334455667788L, NbdError.ENOSPC);
        out.flip();
        assertThat(out.remaining()).isEqualTo(NbdProtocol.SIMPLE_REPLY_LENGTH);
        assertThat(out.getInt()).isEqualTo(NbdProtocol.SIMPLE_REPLY_MAGIC);
        assertThat(out.getInt()).isEqualTo(28);
        assertThat(out.getLong()).isEqualTo(0x1122334455667788L);
    }

    @Test
    void offsetDataHeaderCountsTheOffsetInItsLength() {
        ReplyEncoder.encodeOffsetData(out, 5, 4096, 512);
        out.flip();
        assertThat(out.getInt()).isEqualTo(NbdProtocol.STRUCTURED_REPLY_MAGIC);
        assertThat(out.getShort()).isEqualTo((short) NbdProtocol.REPLY_FLAG_DONE);
        assertThat(out.getShort()).isEqualTo((short) ReplyChunk.OFFSET_DATA.type());
        assertThat(out.getLong()).isEqualTo(5);
        assertThat(out.getInt()).isEqualTo(520);
        assertThat(out.getLong()).isEqualTo(4096);
        assertThat(out.hasRemaining()).isFalse();
    }

    @Test
    void errorChunkCutsLongMessages() {
        ReplyEncoder.encodeError(out, 1, NbdError.EINVAL, "x".repeat(10_000));
        out.flip();
        out.position(16);
        assertThat(out.getInt()).isEqualTo(NbdProtocol.ERROR_PREFIX + ReplyEncoder.MAX_MESSAGE_LENGTH);
        assertThat(out.getInt()).isEqualTo(22);
        assertThat(out.getShort()).isEqualTo((short) ReplyEncoder.MAX_MESSAGE_LENGTH);
    }

    @Test
    void blockStatusNeverDescribesMoreThanWasAsked() {
        List<NbdExport.Extent> extents = List.of(new NbdExport.Extent(4096, NbdExport.Allocation.DATA),
                new NbdExport.Extent(1 << 20, NbdExport.Allocation.HOLE),
                new NbdExport.Extent(4096, NbdExport.Allocation.DATA));
        ReplyEncoder.encodeBlockStatus(out, 9, 1, extents, 8192, false);
        out.flip();
        out.position(16);
        assertThat(out.getInt()).isEqualTo(4 + 2 * 8);
        assertThat(out.getInt()).isEqualTo(1);
        assertThat(List.of(out.getInt(), out.getInt(), out.getInt(), out.getInt()))
                .containsExactly(4096, 0, 4096, 3);
    }

    @Test
    void blockStatusWithReqOneSendsOneDescriptor() {
        List<NbdExport.Extent> extents = List.of(new NbdExport.Extent(4096, NbdExport.Allocation.ZERO),
                new NbdExport.Extent(4096, NbdExport.Allocation.DATA));
        ReplyEncoder.encodeBlockStatus(out, 9, 1, extents, 1 << 20, true);
        assertThat(out.position()).isEqualTo(NbdProtocol.CHUNK_HEADER_LENGTH + 4 + 8);
    }
}
