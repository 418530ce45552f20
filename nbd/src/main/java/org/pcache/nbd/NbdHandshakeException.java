package org.pcache.nbd;

import java.io.IOException;

/** The server refused the client's handshake, for example because the export does not exist. */
public class NbdHandshakeException extends IOException {

    private static final long serialVersionUID = 1L;

    public NbdHandshakeException(String message) {
        super(message);
    }
}
