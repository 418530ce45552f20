package org.pcache.backing;

import java.io.IOException;

/** A backing-device operation that failed: what, where, and why. */
public class BackingIoException extends IOException {

    private static final long serialVersionUID = 1L;

    /** Why an operation failed. */
    public enum Reason {
        /** The device reported an error. */
        IO_ERROR,
        /** The range lies (partly) past the end of the device. */
        OUT_OF_RANGE,
        /** Offset, length or buffer address breaks the engine's alignment (O_DIRECT). */
        MISALIGNED,
        /** The device was stopped before the request could run. */
        STOPPED
    }

    private final Reason reason;
    private final String operation;
    private final long offset;
    private final long length;

    public BackingIoException(Reason reason, String operation, long offset, long length, String detail,
                              Throwable cause) {
        super(operation + " offset=" + offset + " length=" + length + ": " + reason + (detail == null ? "" : ": "
                + detail), cause);
        this.reason = reason;
        this.operation = operation;
        this.offset = offset;
        this.length = length;
    }

    public Reason reason() {
        return reason;
    }

    public String operation() {
        return operation;
    }

    public long offset() {
        return offset;
    }

    public long length() {
        return length;
    }
}
