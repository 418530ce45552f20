package org.pcache.nbd;

/** Transmission-phase request types (proto.md "Request types"). */
public enum NbdCommand {
    READ(0),
    WRITE(1),
    DISC(2),
    FLUSH(3),
    TRIM(4),
    CACHE(5),
    WRITE_ZEROES(6),
    BLOCK_STATUS(7);

    private static final NbdCommand[] BY_TYPE = values();

    private final int type;

    NbdCommand(int type) {
        this.type = type;
    }

    /** The 16-bit type field on the wire. */
    public int type() {
        return type;
    }

    /** The command with this wire type, or null for a type this implementation does not know. */
    public static NbdCommand tryDecode(int type) {
        return type >= 0 && type < BY_TYPE.length ? BY_TYPE[type] : null;
    }
}
