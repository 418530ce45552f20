package org.pcache.nbd;

import java.io.IOException;

/**
 * A request that failed with an NBD error code: thrown by {@link NbdClient} when the server replies with an
 * error, and by an {@link NbdExport} that wants a particular code on the wire (ENOSPC, ENOTSUP).
 */
public class NbdErrorException extends IOException {

    private static final long serialVersionUID = 1L;

    private final NbdError error;

    public NbdErrorException(NbdError error, String message) {
        super(error + ": " + message);
        this.error = error;
    }

    public NbdError error() {
        return error;
    }
}
