package org.pcache.nbd;

import java.io.IOException;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import org.pcache.backing.BackingIoException;
import org.pcache.cache.CacheClosedException;

/**
 * The one mapping from a failed operation to the {@link NbdError} sent to the client: an export's
 * {@link NbdErrorException} keeps its code, the cache's and the backing layer's exceptions get theirs
 * ({@code CacheClosedException} is ESHUTDOWN, a {@code BackingIoException} by its reason, any other
 * {@code IOException}, such as a data CRC mismatch, EIO), and anything unexpected is EIO.
 *
 * <p>It honours the flags that change the answer: ENOTSUP only for a FAST_ZERO request and EOVERFLOW only for a DF
 * read (proto.md says neither should be returned otherwise); both narrow to EINVAL.
 */
final class ErrorTranslation {

    private ErrorTranslation() {
    }

    /** The error for {@code failure}, which may be wrapped in completion exceptions, of a request with these flags. */
    static NbdError of(Throwable failure, int commandFlags) {
        NbdError error = classify(unwrap(failure));
        if (error == NbdError.ENOTSUP && (commandFlags & NbdProtocol.CMD_FLAG_FAST_ZERO) == 0) {
            return NbdError.EINVAL;
        }
        if (error == NbdError.EOVERFLOW && (commandFlags & NbdProtocol.CMD_FLAG_DF) == 0) {
            return NbdError.EINVAL;
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
                case IO_ERROR -> NbdError.EIO;
                case OUT_OF_RANGE, MISALIGNED -> NbdError.EINVAL;
                case STOPPED -> NbdError.ESHUTDOWN;
            };
            case IllegalArgumentException e -> NbdError.EINVAL;
            case IndexOutOfBoundsException e -> NbdError.EINVAL;
            case UnsupportedOperationException e -> NbdError.ENOTSUP;
            case RejectedExecutionException e -> NbdError.ESHUTDOWN;
            case CancellationException e -> NbdError.ESHUTDOWN;
            case CacheClosedException e -> NbdError.ESHUTDOWN;
            case IOException e -> NbdError.EIO;
            default -> NbdError.EIO;
        };
    }
}
