package org.pcache.cache;

import java.io.IOException;

/**
 * The backing device cannot take what the cache sends it: I/O aligned to 512-byte sectors (dm-pcache's unit; a
 * miss or a written-back extent may start and end on any sector). Raised by {@link Pcache#open} and
 * {@link CacheImage#recover} before anything is read or written, instead of every miss and writeback failing later.
 */
public final class BackingBlockSizeException extends IOException {

    private static final long serialVersionUID = 1L;

    private final int alignment;

    BackingBlockSizeException(int alignment) {
        super("the backing device needs " + alignment + "-byte aligned I/O, but the cache reads and writes it in "
                + Pcache.SECTOR_SIZE + "-byte sectors (use a backing device with a " + Pcache.SECTOR_SIZE
                + "-byte minimum block size, or buffered rather than O_DIRECT I/O)");
        this.alignment = alignment;
    }

    /** The alignment the backing device asks for, in bytes. */
    public int alignment() {
        return alignment;
    }

    /** Throws unless {@code alignment} divides a sector, so that every sector-aligned request is aligned for it. */
    static void requireSectorIo(int alignment) throws BackingBlockSizeException {
        if (Pcache.SECTOR_SIZE % alignment != 0) {
            throw new BackingBlockSizeException(alignment);
        }
    }
}
