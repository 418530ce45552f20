package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class RequestValidatorTest {

    private static final long SIZE = 1 << 20;
    private static final int ALL_FLAGS = NbdProtocol.FLAG_HAS_FLAGS | NbdProtocol.FLAG_SEND_FLUSH
            | NbdProtocol.FLAG_SEND_FUA | NbdProtocol.FLAG_SEND_TRIM | NbdProtocol.FLAG_SEND_WRITE_ZEROES
            | NbdProtocol.FLAG_SEND_FAST_ZERO | NbdProtocol.FLAG_SEND_DF;

    private final RequestValidator structured =
            new RequestValidator(new TransmissionSettings(ALL_FLAGS, true, true), SIZE, false);
    private final RequestValidator simple = new RequestValidator(
            new TransmissionSettings(NbdProtocol.FLAG_HAS_FLAGS | NbdProtocol.FLAG_SEND_FLUSH, false, false), SIZE,
            false);

    private static NbdRequest request(NbdCommand command, int flags, long offset, long length) {
        return new NbdRequest(command, command.type(), flags, 1, offset, length);
    }

    private static NbdError error(RequestValidator validator, NbdRequest request) {
        RequestValidator.Rejection rejection = validator.validate(request);
        return rejection == null ? null : rejection.error();
    }

    @Test
    void acceptsAlignedRequestsInside() {
        assertThat(structured.validate(request(NbdCommand.READ, NbdProtocol.CMD_FLAG_DF, 512, 4096))).isNull();
        assertThat(structured.validate(request(NbdCommand.WRITE, NbdProtocol.CMD_FLAG_FUA, SIZE - 512, 512))).isNull();
        assertThat(structured.validate(request(NbdCommand.FLUSH, 0, 0, 0))).isNull();
        assertThat(structured.validate(request(NbdCommand.BLOCK_STATUS, NbdProtocol.CMD_FLAG_REQ_ONE, 0, SIZE)))
                .isNull();
    }

    @Test
    void unknownCommandIsEinval() {
        assertThat(error(structured, new NbdRequest(null, 9, 0, 1, 0, 0))).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void writePastTheEndIsEnospcAndReadPastTheEndIsEinval() {
        assertThat(error(structured, request(NbdCommand.WRITE, 0, SIZE, 512))).isEqualTo(NbdError.ENOSPC);
        assertThat(error(structured, request(NbdCommand.WRITE_ZEROES, 0, SIZE - 512, 1024)))
                .isEqualTo(NbdError.ENOSPC);
        assertThat(error(structured, request(NbdCommand.READ, 0, SIZE - 512, 1024))).isEqualTo(NbdError.EINVAL);
        assertThat(error(structured, request(NbdCommand.TRIM, 0, -512, 512))).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void anyAlignmentPassesButEmptyIsEinval() {
        assertThat(structured.validate(request(NbdCommand.READ, 0, 100, 512))).isNull();
        assertThat(structured.validate(request(NbdCommand.WRITE, 0, 1, 1))).isNull();
        assertThat(structured.validate(request(NbdCommand.WRITE_ZEROES, 0, 3, 1000))).isNull();
        assertThat(error(structured, request(NbdCommand.READ, 0, 0, 0))).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void fastZeroOfAPartialSectorIsEnotsupEvenOnAFastZeroingExport() {
        RequestValidator fast = new RequestValidator(new TransmissionSettings(ALL_FLAGS, true, true), SIZE, true);
        assertThat(fast.validate(request(NbdCommand.WRITE_ZEROES, NbdProtocol.CMD_FLAG_FAST_ZERO, 512, 4096))).isNull();
        assertThat(error(fast, request(NbdCommand.WRITE_ZEROES, NbdProtocol.CMD_FLAG_FAST_ZERO, 1, 4096)))
                .isEqualTo(NbdError.ENOTSUP);
        assertThat(error(fast, request(NbdCommand.WRITE_ZEROES, NbdProtocol.CMD_FLAG_FAST_ZERO, 512, 100)))
                .isEqualTo(NbdError.ENOTSUP);
    }

    @Test
    void readAndWriteUpTo64MibPassLongerIsEinvalOtherCommandsAreUnbounded() {
        RequestValidator big = new RequestValidator(new TransmissionSettings(ALL_FLAGS, true, true), 8L << 30, true);
        assertThat(big.validate(request(NbdCommand.READ, 0, 1, 64 << 20))).isNull();
        assertThat(big.validate(request(NbdCommand.WRITE, 0, 0, 64 << 20))).isNull();
        assertThat(error(big, request(NbdCommand.READ, 0, 0, (64 << 20) + 1))).isEqualTo(NbdError.EINVAL);
        assertThat(error(big, request(NbdCommand.WRITE, 0, 0, (64 << 20) + 1))).isEqualTo(NbdError.EINVAL);
        for (NbdCommand command : new NbdCommand[] {NbdCommand.TRIM, NbdCommand.WRITE_ZEROES, NbdCommand.CACHE,
                NbdCommand.BLOCK_STATUS}) {
            assertThat(big.validate(request(command, 0, 1, 0xffff_ffffL))).as(command.name()).isNull();
        }
    }

    @Test
    void flagsNotDocumentedForTheCommandAreEinval() {
        assertThat(error(structured, request(NbdCommand.READ, NbdProtocol.CMD_FLAG_NO_HOLE, 0, 512)))
                .isEqualTo(NbdError.EINVAL);
        assertThat(error(structured, request(NbdCommand.WRITE, NbdProtocol.CMD_FLAG_DF, 0, 512)))
                .isEqualTo(NbdError.EINVAL);
        assertThat(error(structured, request(NbdCommand.READ, NbdProtocol.CMD_FLAG_REQ_ONE, 0, 512)))
                .isEqualTo(NbdError.EINVAL);
        assertThat(error(structured, request(NbdCommand.READ, 0x100, 0, 512))).isEqualTo(NbdError.EINVAL);
        assertThat(error(simple, request(NbdCommand.READ, NbdProtocol.CMD_FLAG_DF, 0, 512)))
                .isEqualTo(NbdError.EINVAL);
        assertThat(error(simple, request(NbdCommand.WRITE, NbdProtocol.CMD_FLAG_FUA, 0, 512)))
                .isEqualTo(NbdError.EINVAL);
    }

    @Test
    void commandsNotNegotiatedAreEinval() {
        assertThat(error(simple, request(NbdCommand.TRIM, 0, 0, 512))).isEqualTo(NbdError.EINVAL);
        assertThat(error(simple, request(NbdCommand.WRITE_ZEROES, 0, 0, 512))).isEqualTo(NbdError.EINVAL);
        assertThat(error(simple, request(NbdCommand.BLOCK_STATUS, 0, 0, 512))).isEqualTo(NbdError.EINVAL);
        assertThat(simple.validate(request(NbdCommand.CACHE, 0, 0, 512))).isNull();
    }

    @Test
    void flushWithOffsetOrLengthIsEinval() {
        assertThat(error(structured, request(NbdCommand.FLUSH, 0, 512, 0))).isEqualTo(NbdError.EINVAL);
    }

    @Test
    void fastZeroOnAnExportWithoutFastZeroingIsEnotsup() {
        assertThat(error(structured, request(NbdCommand.WRITE_ZEROES, NbdProtocol.CMD_FLAG_FAST_ZERO, 0, 512)))
                .isEqualTo(NbdError.ENOTSUP);
        assertThat(structured.validate(request(NbdCommand.WRITE_ZEROES, NbdProtocol.CMD_FLAG_NO_HOLE, 0, 512)))
                .isNull();
    }

    @Test
    void writesOnAReadOnlyExportAreEperm() {
        RequestValidator readOnly = new RequestValidator(
                new TransmissionSettings(ALL_FLAGS | NbdProtocol.FLAG_READ_ONLY, true, false), SIZE, false);
        assertThat(error(readOnly, request(NbdCommand.WRITE, 0, 0, 512))).isEqualTo(NbdError.EPERM);
        assertThat(error(readOnly, request(NbdCommand.TRIM, 0, 0, 512))).isEqualTo(NbdError.EPERM);
        assertThat(readOnly.validate(request(NbdCommand.READ, 0, 0, 512))).isNull();
    }
}
