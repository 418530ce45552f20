package org.pcache.nbd;

/** Handshake options this implementation understands; any other code is answered with NBD_REP_ERR_UNSUP. */
public enum NbdOption {
    EXPORT_NAME(1),
    ABORT(2),
    LIST(3),
    STARTTLS(5),
    INFO(6),
    GO(7),
    STRUCTURED_REPLY(8),
    LIST_META_CONTEXT(9),
    SET_META_CONTEXT(10);

    private final int code;

    NbdOption(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The option with this code, or null when the code is unknown here. */
    public static NbdOption tryDecode(int code) {
        for (NbdOption option : values()) {
            if (option.code == code) {
                return option;
            }
        }
        return null;
    }
}
