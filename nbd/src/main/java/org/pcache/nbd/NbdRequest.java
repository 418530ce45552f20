package org.pcache.nbd;

/**
 * A decoded transmission-phase request header.
 *
 * @param command null when the type is not one this implementation knows
 * @param type    the raw 16-bit type field, kept for messages about unknown commands
 * @param length  the unsigned 32-bit length field
 */
public record NbdRequest(NbdCommand command, int type, int flags, long handle, long offset, long length) {

    public boolean hasFlag(int flag) {
        return (flags & flag) != 0;
    }

    @Override
    public String toString() {
        return (command == null ? "type " + type : command.toString()) + " handle=" + Long.toHexString(handle)
                + " off=" + Long.toUnsignedString(offset) + " len=" + length + " flags=0x" + Integer.toHexString(flags);
    }
}
