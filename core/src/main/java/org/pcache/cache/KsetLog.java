package org.pcache.cache;

import org.pcache.pmem.CacheDevice;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.CachePos;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.KsetOnMedia;

import java.io.IOException;

/**
 * Walks the kset log from a position to its end, the way replay reads it: a missing magic or a bad CRC is the end (a
 * never-written or torn kset), any other invalid kset is corruption, a LAST kset hops to the segment it names, and
 * more hops than there are segments is a cycle. Replay, check, dump and recover all walk through here.
 */
final class KsetLog {

    /** What to do with each valid kset; the reader holds it. */
    @FunctionalInterface
    interface Visitor {
        /** {@code dirty}: the kset is at or after dirty_tail (not written back yet). */
        void visit(CachePos pos, KsetOnMedia.Status status, boolean dirty)
                throws IOException, InterruptedException;
    }

    /** A visitor that only reads the region. */
    @FunctionalInterface
    interface ReadingVisitor {
        void visit(CachePos pos, KsetOnMedia.Status status, boolean dirty) throws CorruptMediaException;
    }

    private KsetLog() {
    }

    /** {@link #walk} for visitors that only read: the walk can then fail only with corruption. */
    static CachePos read(CacheDevice device, KsetReader reader, CachePos from, ReadingVisitor visitor)
            throws CorruptMediaException {
        try {
            return walk(device, reader, from, visitor::visit);
        } catch (CorruptMediaException e) {
            throw e;
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException("a walk that only reads the region failed", e);
        }
    }

    /**
     * Walks from {@code from} to the end of the log; returns where it ends (the key head). Throws
     * {@link CorruptMediaException} for a corrupt kset, a cycle, or — when walking from key_tail — a dirty_tail that
     * does not lie on the log.
     */
    static CachePos walk(CacheDevice device, KsetReader reader, CachePos from, Visitor visitor)
            throws IOException, InterruptedException {
        CachePos pos = from;
        boolean dirty = false;
        int hops = 0;
        while (true) {
            dirty |= pos.equals(device.dirtyTail());
            KsetOnMedia.Status status = reader.read(pos);
            if (status == KsetOnMedia.Status.NO_MAGIC || status == KsetOnMedia.Status.CRC_MISMATCH) {
                if (!dirty) {
                    throw new CorruptMediaException("dirty_tail", CorruptMediaException.NO_SEGMENT,
                            CacheDeviceLayout.DIRTY_TAIL_OFFSET, "position", "a kset boundary between " + from
                            + " and the end of the log at " + pos, device.dirtyTail().toString());
                }
                return pos;
            }
            if (!status.valid()) {
                throw reader.invalid(status);
            }
            if (status == KsetOnMedia.Status.LAST && ++hops > device.segmentCount()) {
                throw new CorruptMediaException("kset at " + pos, device.physicalSegmentId(pos.seg()),
                        device.dataOffset(pos.seg()) + pos.off(), "LAST chain", "at most " + device.segmentCount()
                        + " hops", "a cycle");
            }
            visitor.visit(pos, status, dirty);
            pos = reader.next();
        }
    }
}
