package org.pcache.nbd;

import java.io.IOException;

/**
 * The peer broke the NBD framing or a mandatory rule (bad magic, a length that cannot be honoured, an
 * unexpected reply). Terminal for the connection it was read from, and only for that one.
 */
public class NbdProtocolException extends IOException {

    private static final long serialVersionUID = 1L;

    public NbdProtocolException(String message) {
        super(message);
    }
}
