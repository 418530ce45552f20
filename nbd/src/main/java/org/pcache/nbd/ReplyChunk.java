package org.pcache.nbd;

/** Structured reply chunk types (proto.md "Structured reply types"); error types have bit 15 set. */
public enum ReplyChunk {
    NONE(0),
    OFFSET_DATA(1),
    OFFSET_HOLE(2),
    BLOCK_STATUS(5),
    ERROR(0x8001),
    ERROR_OFFSET(0x8002);

    /** Bit 15 marks an error chunk, even of a type the receiver does not know. */
    public static final int ERROR_BIT = 0x8000;

    private final int type;

    ReplyChunk(int type) {
        this.type = type;
    }

    public int type() {
        return type;
    }

    /** The chunk type with this code, or null when unknown. */
    public static ReplyChunk tryDecode(int type) {
        for (ReplyChunk chunk : values()) {
            if (chunk.type == type) {
                return chunk;
            }
        }
        return null;
    }
}
