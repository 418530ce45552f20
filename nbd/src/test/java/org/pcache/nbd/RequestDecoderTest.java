package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class RequestDecoderTest {

    private final RequestDecoder decoder = new RequestDecoder();

    static ByteBuffer request(int flags, int type, long handle, long offset, long length) {
        return ByteBuffer.allocate(NbdProtocol.REQUEST_HEADER_LENGTH).putInt(NbdProtocol.REQUEST_MAGIC)
                .putShort((short) flags).putShort((short) type).putLong(handle).putLong(offset)
                .putInt((int) length).flip();
    }

    @Test
    void decodesEveryHeaderField() throws Exception {
        NbdRequest request = decoder.decodeHeader(request(NbdProtocol.CMD_FLAG_FUA, 4, 0xabcdefL, 1L << 40,
                0xffff_fe00L));
        assertThat(request).isEqualTo(new NbdRequest(NbdCommand.TRIM, 4, 1, 0xabcdefL, 1L << 40, 0xffff_fe00L));
        assertThat(decoder.state()).isEqualTo(RequestDecoder.State.HEADER);
    }

    @Test
    void partialHeaderConsumesNothing() throws Exception {
        ByteBuffer in = request(0, 0, 1, 0, 512).limit(27);
        assertThat(decoder.decodeHeader(in)).isNull();
        assertThat(in.position()).isZero();
    }

    @Test
    void unknownCommandDecodesWithNullCommand() throws Exception {
        NbdRequest request = decoder.decodeHeader(request(0, 42, 1, 0, 0));
        assertThat(request.command()).isNull();
        assertThat(request.type()).isEqualTo(42);
    }

    @Test
    void writePayloadIsCopiedAcrossSplitInput() throws Exception {
        decoder.decodeHeader(request(0, 1, 7, 0, 8));
        assertThat(decoder.state()).isEqualTo(RequestDecoder.State.PAYLOAD);
        ByteBuffer payload = ByteBuffer.allocate(8);
        decoder.payloadInto(payload);
        assertThat(decoder.decodePayload(ByteBuffer.wrap(new byte[] {1, 2, 3}))).isFalse();
        assertThat(decoder.decodePayload(ByteBuffer.wrap(new byte[] {4, 5, 6, 7, 8, 9}))).isTrue();
        assertThat(payload.array()).containsExactly(1, 2, 3, 4, 5, 6, 7, 8);
        assertThat(decoder.state()).isEqualTo(RequestDecoder.State.HEADER);
    }

    @Test
    void discardedPayloadIsSkippedSoTheNextHeaderDecodes() throws Exception {
        decoder.decodeHeader(request(0, 1, 7, 0, 1000));
        decoder.discardPayload(1000);
        assertThat(decoder.state()).isEqualTo(RequestDecoder.State.DISCARD);
        ByteBuffer in = ByteBuffer.allocate(1000 + NbdProtocol.REQUEST_HEADER_LENGTH);
        in.position(1000).put(request(0, 3, 8, 0, 0)).flip();
        assertThat(decoder.decodePayload(in)).isTrue();
        assertThat(decoder.decodeHeader(in).command()).isEqualTo(NbdCommand.FLUSH);
    }

    @Test
    void badMagicFailsTheDecoder() {
        ByteBuffer in = request(0, 0, 1, 0, 512).putInt(0, 0x12345678);
        assertThatThrownBy(() -> decoder.decodeHeader(in)).isInstanceOf(NbdProtocolException.class)
                .hasMessageContaining("request magic 0x12345678");
        assertThat(decoder.state()).isEqualTo(RequestDecoder.State.FAILED);
    }

    @Test
    void writeClaimingMoreThanCanBeDrainedFailsTheDecoder() {
        assertThatThrownBy(() -> decoder.decodeHeader(request(0, 1, 1, 0, 0xffff_ffffL)))
                .isInstanceOf(NbdProtocolException.class).hasMessageContaining("write payload of 4294967295 bytes");
    }

    @Test
    void headerBeforeThePayloadDecisionIsAProgrammingError() throws Exception {
        decoder.decodeHeader(request(0, 1, 1, 0, 512));
        assertThatThrownBy(() -> decoder.decodeHeader(request(0, 0, 1, 0, 512)))
                .isInstanceOf(IllegalStateException.class);
    }
}
