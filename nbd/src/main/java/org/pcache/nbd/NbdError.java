package org.pcache.nbd;

import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import org.pcache.backing.BackingIoException;
import org.pcache.cache.CacheClosedException;

/** Error values of the transmission phase (proto.md "Error values"); the only codes put on the wire. */
public enum NbdError {
    EPERM(1),
    EIO(5),
    ENOMEM(12),
    EINVAL(22),
    ENOSPC(28),
    EOVERFLOW(75),
    ENOTSUP(95),
    ESHUTDOWN(108);

    private final int code;

    NbdError(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The error with this code; an unexpected value counts as EINVAL, as the spec tells clients to do. */
    public static NbdError decode(int code) {
        for (NbdError error : values()) {
            if (error.code == code) {
                return error;
            }
        }
        return EINVAL;
    }

    /**
     * The one mapping from a failed operation to the code sent to the client. It honours the flags that change
     * the answer: ENOTSUP only for a FAST_ZERO request and EOVERFLOW only for a DF read (proto.md says neither
     * should be returned otherwise); both narrow to EINVAL.
     */
    public static NbdError of(Throwable failure, int commandFlags) {
        NbdError error = classify(unwrap(failure));
        if (error == ENOTSUP && (commandFlags & NbdProtocol.CMD_FLAG_FAST_ZERO) == 0) {
            return EINVAL;
        }
        if (error == EOVERFLOW && (commandFlags & NbdProtocol.CMD_FLAG_DF) == 0) {
            return EINVAL;
        }
        return error;
    }

    private static Throwable unwrap(Throwable failure) {
        Throwable cause = failure;
        while ((cause instanceof CompletionException || cause instanceof ExecutionException)
                && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause;
    }

    private static NbdError classify(Throwable cause) {
        return switch (cause) {
            case NbdErrorException e -> e.error();
            case BackingIoException e -> switch (e.reason()) {
                case IO_ERROR -> EIO;
                case OUT_OF_RANGE, MISALIGNED -> EINVAL;
                case STOPPED -> ESHUTDOWN;
            };
            case IllegalArgumentException e -> EINVAL;
            case IndexOutOfBoundsException e -> EINVAL;
            case UnsupportedOperationException e -> ENOTSUP;
            case RejectedExecutionException e -> ESHUTDOWN;
            case CancellationException e -> ESHUTDOWN;
            case CacheClosedException e -> ESHUTDOWN;
            case IOException e -> EIO;
            default -> EIO;
        };
    }
}
