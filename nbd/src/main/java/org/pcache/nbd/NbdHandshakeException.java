package org.pcache.nbd;

import java.io.IOException;

/** The server refused the client's handshake, for example because the export does not exist. */
public class NbdHandshakeException extends IOException {

    private static final long serialVersionUID = 1L;

    private final OptionReply reply;

    public NbdHandshakeException(String message, OptionReply reply) {
        super(message);
        this.reply = reply;
    }

    /** The option error the server answered with. */
    public OptionReply reply() {
        return reply;
    }
}
