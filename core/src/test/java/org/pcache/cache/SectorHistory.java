package org.pcache.cache;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The writes a concurrent test issued, per sector, and the check that the cache behaved as a register for every sector:
 * a read may return the data of a write that covered the sector and had started before the read ended, unless another
 * write covering the sector started after that one ended and completed before the read started.
 *
 * <p>Times are ticks of one shared counter, taken before a request is issued and after its completion was seen, so a
 * reported violation is always real. A write that never completed successfully has {@link #NEVER} as its end: its data
 * may show up, but it supersedes nothing.
 *
 * <p>Threading: built by one thread after the workload ran.
 */
final class SectorHistory {

    /** The end of a write that did not complete successfully. */
    static final long NEVER = Long.MAX_VALUE;

    /** One write: ticks before it was issued and after it completed ({@link #NEVER} if it failed). */
    record Write(long id, long off, int len, long start, long end) {
        boolean covers(long sector) {
            long at = sector * SectorPattern.SECTOR;
            return at >= off && at < off + len;
        }
    }

    private final Map<Long, Write> byId = new HashMap<>();
    /** Per sector, the writes covering it; null for a sector no write covered. */
    private final List<List<Write>> bySector;

    /** A device of {@code size} bytes whose original content carries write id {@code originalId}. */
    SectorHistory(long size, long originalId) {
        bySector = new ArrayList<>(Collections.nCopies((int) (size / SectorPattern.SECTOR), null));
        byId.put(originalId, new Write(originalId, 0, (int) Math.min(size, Integer.MAX_VALUE), 0, 0));
    }

    void add(Write write) {
        if (byId.putIfAbsent(write.id(), write) != null) {
            throw new IllegalArgumentException("write id " + write.id() + " used twice");
        }
        for (long at = write.off(); at < write.off() + write.len(); at += SectorPattern.SECTOR) {
            int sector = (int) (at / SectorPattern.SECTOR);
            if (bySector.get(sector) == null) {
                bySector.set(sector, new ArrayList<>(4));
            }
            bySector.get(sector).add(write);
        }
    }

    int sectors() {
        return bySector.size();
    }

    /** The writes covering {@code sector}, in the order they were added. */
    List<Write> covering(long sector) {
        List<Write> writes = bySector.get((int) sector);
        return writes == null ? List.of() : writes;
    }

    /**
     * Why a read issued at tick {@code readStart} and completed at {@code readEnd} may not find write {@code id} in
     * {@code sector}; null when it may. Pass {@link #NEVER} for both ticks to check the content after quiescence.
     */
    String violation(long sector, long id, long readStart, long readEnd) {
        Write found = byId.get(id);
        if (found == null || !found.covers(sector)) {
            return "not the data of any write that covered it";
        }
        if (found.start() > readEnd) {
            return found + " started after the read ended";
        }
        for (Write other : covering(sector)) {
            if (other.start() > found.end() && other.end() < readStart) {
                return found + " was superseded by " + other + " before the read started";
            }
        }
        return null;
    }
}
