package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;

/**
 * Tells dirty data segments from clean ones for {@link Pcache#segmentUses()}: reads the dirty part of the kset log,
 * dirty_tail to key_head, and marks {@link SegmentUse#DIRTY} every data segment that a key there (other than a CLEAN
 * miss fill) points into. Every other data segment holds only data already on the backing device: GC frees it once it
 * has reclaimed the ksets that still name it.
 *
 * <p>A display, not a persistence step: it reads the region without locks while writeback and GC go on. Writeback may
 * move dirty_tail past the ksets read and GC reclaim them; a kset overwritten meanwhile fails its magic or CRC and ends
 * the walk, and a key whose segment was invalidated fails its generation check and is skipped, so a segment can only
 * be shown clean a moment late. Keys still in an open kset (at most about a second of writes) are not in the log yet
 * and not counted. The walk reads at most {@link #MAX_KSETS} ksets; on a longer dirty log every data segment is
 * reported dirty rather than guessed clean.
 *
 * <p>Threading: one instance per call, any thread.
 */
final class DirtySegments {

    /** Most ksets one call reads: up to about 10 MiB of the region with full ksets. */
    static final int MAX_KSETS = 2048;

    private final KsetReader reader;

    DirtySegments(CacheDevice device, SegmentMap segments, long backingSize) {
        this.reader = new KsetReader(device, segments, backingSize);
    }

    /** Turns the DATA entries of {@code uses} that keys in {@code [dirtyTail, keyHead)} name into DIRTY. */
    SegmentUse[] mark(SegmentUse[] uses, CachePos dirtyTail, CachePos keyHead) {
        boolean[] dirty = new boolean[uses.length];
        boolean complete = walk(dirty, dirtyTail, keyHead);
        for (int id = 0; id < uses.length; id++) {
            if (uses[id] == SegmentUse.DATA && (dirty[id] || !complete)) {
                uses[id] = SegmentUse.DIRTY;
            }
        }
        return uses;
    }

    /** Marks the segments the dirty keys name; false when the walk stopped at its bound before key_head. */
    private boolean walk(boolean[] dirty, CachePos dirtyTail, CachePos keyHead) {
        CachePos pos = dirtyTail;
        for (int read = 0; !pos.equals(keyHead); read++) {
            if (read == MAX_KSETS) {
                return false;
            }
            KsetOnMedia.Status status = reader.read(pos);
            if (status != KsetOnMedia.Status.NORMAL && status != KsetOnMedia.Status.LAST) {
                return true;
            }
            try {
                if (status == KsetOnMedia.Status.NORMAL) {
                    for (int i = 0; i < reader.keyNum(); i++) {
                        markKey(dirty, i);
                    }
                }
                pos = reader.next();
            } catch (CorruptMediaException e) {
                return true;
            }
        }
        return true;
    }

    private void markKey(boolean[] dirty, int index) {
        try {
            CacheKey key = reader.key(index);
            if (key.isDirty() && !key.isDataless() && key.seg.id() < dirty.length) {
                dirty[key.seg.id()] = true;
            }
        } catch (CorruptMediaException e) {
            // The key's segment was invalidated since the kset was read: its data is gone, not dirty.
        }
    }
}
