package org.pcache.pmem;

import java.lang.foreign.MemorySegment;

/**
 * One replicated metadata record: two slots holding a record with a {@link MetaHeader}, the newest valid one being
 * the truth. This is the only place that bumps seq, picks a slot and compares seqs (dm-pcache's
 * {@code pcache_meta_find_latest}, {@code pcache_meta_seq_after} and the *_write functions).
 *
 * <p>Record size and slot stride are separate: cache_info and segment_info slots are 4 KiB apart although the records
 * are 24 and 16 bytes (the merged dm-pcache confused the two; fixed upstream in Dec 2025), tails and gens are adjacent.
 *
 * <p>Invariants: {@link #latestSlot()} holds the newest valid copy known, or is slot 0 when none was found, so that the
 * first write of a new record goes to slot 1 with seq 1 as in dm-pcache.
 *
 * <p>Persistence order (rule 3): bump seq, seal the CRC, switch to the other slot, write, persist. The slot holding the
 * newest good copy is never written, so a power cut leaves either the old or the new record.
 *
 * <p>Threading: not thread-safe; each record has one writer or its owner serialises calls.
 */
public final class DualReplica {
    /** Number of replicas of every metadata record (PCACHE_META_INDEX_MAX). */
    public static final int SLOTS = 2;

    private static final int SEQ_MASK = 0xFF;

    private final PmemRegion region;
    private final long offset;
    private final long recordSize;
    private final long slotStride;
    private int latestSlot;
    private int latestSeq;

    /**
     * A record whose slot 0 is at {@code offset} of {@code region} and slot 1 at {@code offset + slotStride}. Call
     * {@link #loadLatest} before the first {@link #writeNext} unless both slots are known to be zero.
     */
    public DualReplica(PmemRegion region, long offset, long recordSize, long slotStride) {
        if (recordSize <= MetaHeader.SIZE || slotStride < recordSize) {
            throw new IllegalArgumentException("recordSize " + recordSize + " must exceed the header and not exceed "
                    + "slotStride " + slotStride);
        }
        if (offset < 0 || offset + slotStride + recordSize > region.size()) {
            throw new IllegalArgumentException("replica slots at " + offset + " (stride " + slotStride + ", size "
                    + recordSize + ") exceed the region of " + region.size() + " bytes");
        }
        this.region = region;
        this.offset = offset;
        this.recordSize = recordSize;
        this.slotStride = slotStride;
    }

    /** Whether 8-bit sequence number {@code a} is newer than {@code b}, across wrap-around. */
    public static boolean seqAfter(int a, int b) {
        return (byte) (a - b) > 0;
    }

    /**
     * Copies the newest replica whose CRC is valid into {@code staging} and remembers its slot and seq. Slots with a
     * bad CRC are skipped; on equal seqs slot 0 wins. Returns false, with the record bytes of {@code staging} zeroed,
     * when no slot is valid.
     */
    public boolean loadLatest(MemorySegment staging) {
        OnMediaLayout.requireCapacity(staging, recordSize, "replica");
        int foundSlot = -1;
        int foundSeq = 0;
        for (int slot = 0; slot < SLOTS; slot++) {
            region.read(slotOffset(slot), staging, 0, recordSize);
            if (!MetaHeader.crcValid(staging, recordSize)) {
                continue;
            }
            int seq = MetaHeader.seq(staging);
            if (foundSlot < 0 || seqAfter(seq, foundSeq)) {
                foundSlot = slot;
                foundSeq = seq;
            }
        }
        if (foundSlot < 0) {
            // Never hand out a record that failed its CRC (dm-pcache leaked it before its Nov 2025 fix).
            staging.asSlice(0, recordSize).fill((byte) 0);
            latestSlot = 0;
            latestSeq = 0;
            return false;
        }
        region.read(slotOffset(foundSlot), staging, 0, recordSize);
        latestSlot = foundSlot;
        latestSeq = foundSeq;
        return true;
    }

    /**
     * Writes the record in {@code staging} as the new newest copy and makes it durable: seq of the latest copy + 1,
     * CRC, the other slot than the latest, write, persist. Fills in the header of {@code staging}.
     */
    public void writeNext(MemorySegment staging) {
        OnMediaLayout.requireCapacity(staging, recordSize, "replica");
        int seq = (latestSeq + 1) & SEQ_MASK;
        int slot = (latestSlot + 1) % SLOTS;
        MetaHeader.seq(staging, seq);
        MetaHeader.seal(staging, recordSize);
        long target = slotOffset(slot);
        region.write(target, staging, 0, recordSize);
        region.persist(target, recordSize); // rule 3: the newest good copy stays intact until this one is durable
        latestSlot = slot;
        latestSeq = seq;
    }

    /** The slot holding the newest copy (0 when none was found). */
    public int latestSlot() {
        return latestSlot;
    }

    /** The seq of the newest copy (0 when none was found). */
    public int latestSeq() {
        return latestSeq;
    }

    /** Region offset of {@code slot}. */
    public long slotOffset(int slot) {
        return offset + slot * slotStride;
    }
}
