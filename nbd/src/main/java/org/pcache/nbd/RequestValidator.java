package org.pcache.nbd;

import static org.pcache.nbd.NbdProtocol.CMD_FLAG_DF;
import static org.pcache.nbd.NbdProtocol.CMD_FLAG_FAST_ZERO;
import static org.pcache.nbd.NbdProtocol.CMD_FLAG_FUA;
import static org.pcache.nbd.NbdProtocol.CMD_FLAG_NO_HOLE;
import static org.pcache.nbd.NbdProtocol.CMD_FLAG_REQ_ONE;

/**
 * Checks a request against the protocol and what was negotiated, before anything is executed (nbdkit's
 * validate-then-execute split): command, flags, range, alignment and length. A request that passes can be
 * handed to the {@link BlockSizeAdapter} and from it to the export, whose contract relies on these checks.
 *
 * <p>Threading: immutable; used by one connection's reader thread.
 */
final class RequestValidator {

    /** Why a request is refused: the code for the wire and a message for the client and the log. */
    record Rejection(NbdError error, String message) {
    }

    private final TransmissionSettings settings;
    private final long exportSize;
    private final boolean fastZero;

    RequestValidator(TransmissionSettings settings, long exportSize, boolean fastZero) {
        this.settings = settings;
        this.exportSize = exportSize;
        this.fastZero = fastZero;
    }

    /** Null when the request may run; NBD_CMD_DISC is not checked here. */
    Rejection validate(NbdRequest request) {
        NbdCommand command = request.command();
        if (command == null) {
            return new Rejection(NbdError.EINVAL, "unknown command type " + request.type());
        }
        Rejection rejection = checkFlags(command, request.flags());
        if (rejection == null) {
            rejection = checkNegotiated(command);
        }
        if (rejection == null) {
            rejection = command == NbdCommand.FLUSH ? checkFlush(request) : checkRange(command, request);
        }
        if (rejection == null && request.hasFlag(CMD_FLAG_FAST_ZERO) && !fastZero) {
            // proto.md: fail a FAST_ZERO request quickly with ENOTSUP unless zeroing beats writing.
            rejection = new Rejection(NbdError.ENOTSUP, "zeroing is not faster than writing on this export");
        }
        if (rejection == null && request.hasFlag(CMD_FLAG_FAST_ZERO)
                && (request.offset() % NbdExport.BLOCK_SIZE != 0 || request.length() % NbdExport.BLOCK_SIZE != 0)) {
            // A partial sector is read, modified and written back: never faster than a write.
            rejection = new Rejection(NbdError.ENOTSUP, "a partial sector cannot be zeroed fast");
        }
        return rejection;
    }

    private Rejection checkFlags(NbdCommand command, int flags) {
        int unknown = flags & ~NbdProtocol.CMD_FLAGS_KNOWN;
        if (unknown != 0) {
            return invalid("unknown command flags 0x" + Integer.toHexString(unknown));
        }
        // proto.md: the server SHOULD return EINVAL for a flag not documented for the command.
        if ((flags & CMD_FLAG_FUA) != 0 && !settings.has(NbdProtocol.FLAG_SEND_FUA)) {
            return invalid("FUA flag without NBD_FLAG_SEND_FUA");
        }
        if ((flags & (CMD_FLAG_NO_HOLE | CMD_FLAG_FAST_ZERO)) != 0 && command != NbdCommand.WRITE_ZEROES) {
            return invalid("NO_HOLE and FAST_ZERO flags are only valid on WRITE_ZEROES");
        }
        if ((flags & CMD_FLAG_FAST_ZERO) != 0 && !settings.has(NbdProtocol.FLAG_SEND_FAST_ZERO)) {
            return invalid("FAST_ZERO flag without NBD_FLAG_SEND_FAST_ZERO");
        }
        if ((flags & CMD_FLAG_DF) != 0 && (command != NbdCommand.READ || !settings.structuredReplies())) {
            return invalid("DF flag is only valid on READ with structured replies");
        }
        if ((flags & CMD_FLAG_REQ_ONE) != 0 && command != NbdCommand.BLOCK_STATUS) {
            return invalid("REQ_ONE flag is only valid on BLOCK_STATUS");
        }
        return null;
    }

    private Rejection checkNegotiated(NbdCommand command) {
        if (settings.has(NbdProtocol.FLAG_READ_ONLY)
                && (command == NbdCommand.WRITE || command == NbdCommand.TRIM || command == NbdCommand.WRITE_ZEROES)) {
            return new Rejection(NbdError.EPERM, command + " on a read-only export");
        }
        return switch (command) {
            case FLUSH -> settings.has(NbdProtocol.FLAG_SEND_FLUSH) ? null : invalid("FLUSH was not advertised");
            case TRIM -> settings.has(NbdProtocol.FLAG_SEND_TRIM) ? null : invalid("TRIM was not advertised");
            case WRITE_ZEROES -> settings.has(NbdProtocol.FLAG_SEND_WRITE_ZEROES) ? null
                    : invalid("WRITE_ZEROES was not advertised");
            case BLOCK_STATUS -> settings.baseAllocation() ? null
                    : invalid("BLOCK_STATUS without a metadata context selected");
            // CACHE is accepted even unadvertised: proto.md notes clients that send it regardless.
            case READ, WRITE, CACHE, DISC -> null;
        };
    }

    private static Rejection checkFlush(NbdRequest request) {
        if (request.offset() != 0 || request.length() != 0) {
            return invalid("FLUSH with offset " + Long.toUnsignedString(request.offset()) + " and length "
                    + request.length() + " (expected 0 and 0)");
        }
        return null;
    }

    private Rejection checkRange(NbdCommand command, NbdRequest request) {
        long offset = request.offset();
        long length = request.length();
        if (length == 0) {
            return invalid(command + " of length 0");
        }
        // Minimum block size 1: any offset and length inside the export (BlockSizeAdapter). Only READ and WRITE,
        // which carry a payload, are bounded; WRITE_ZEROES, TRIM, CACHE and BLOCK_STATUS may ask for up to 2^32 - 1
        // bytes and are split or shortened (proto.md lets them exceed the maximum payload).
        boolean bounded = command == NbdCommand.READ || command == NbdCommand.WRITE;
        if (bounded && length > NbdProtocol.MAX_REQUEST_LENGTH) {
            // proto.md: EINVAL; EOVERFLOW is only for payload-less commands and DF reads.
            return invalid(command + " of " + length + " bytes (expected <= " + NbdProtocol.MAX_REQUEST_LENGTH + ")");
        }
        if (offset < 0 || length > exportSize || offset > exportSize - length) {
            // proto.md: ENOSPC for writes past the end, EINVAL for everything else.
            NbdError error = command == NbdCommand.WRITE || command == NbdCommand.WRITE_ZEROES
                    ? NbdError.ENOSPC : NbdError.EINVAL;
            return new Rejection(error, command + " [" + Long.toUnsignedString(offset) + ", +" + length
                    + ") ends past the export size " + exportSize);
        }
        return null;
    }

    private static Rejection invalid(String message) {
        return new Rejection(NbdError.EINVAL, message);
    }
}
