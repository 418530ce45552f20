package org.pcache.nbd;

/**
 * Error values of the transmission phase (proto.md "Error values"); the only codes put on the wire. Which error a
 * failed operation is answered with is {@link ErrorTranslation}'s decision.
 */
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
}
