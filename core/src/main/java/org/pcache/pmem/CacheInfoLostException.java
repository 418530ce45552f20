package org.pcache.pmem;

import java.util.List;

/**
 * Both cache_info replicas of a formatted cache are unreadable, so the cache's geometry and options are lost. The
 * device is refused rather than formatted over, since the segments may still hold data not yet written back; only
 * {@link CacheFormat#ALWAYS} overwrites it. Nothing was written.
 */
public class CacheInfoLostException extends CorruptMediaException {

    private static final long serialVersionUID = 1L;

    /**
     * One cache_info replica and what is wrong with it.
     *
     * @param slot    0 or 1
     * @param offset  region offset of the replica
     * @param problem what the replica holds instead of a valid record
     */
    public record Copy(int slot, long offset, String problem) {
        @Override
        public String toString() {
            return "copy " + slot + " at offset " + offset + ": " + problem;
        }
    }

    private final List<Copy> copies;

    /** @param copies both replicas, slot 0 first */
    public CacheInfoLostException(List<Copy> copies) {
        super("cache_info lost: no valid copy (" + copies.get(0) + "; " + copies.get(1) + "); the cache is left as "
                        + "it was, and only an explicit format overwrites it with a new, empty cache (its data is "
                        + "lost)",
                "cache_info", NO_SEGMENT, copies.get(0).offset(), "crc", "a copy with a valid crc",
                copies.get(0).problem() + "; " + copies.get(1).problem());
        this.copies = List.copyOf(copies);
    }

    /** Both replicas, slot 0 first. */
    public List<Copy> copies() {
        return copies;
    }
}
