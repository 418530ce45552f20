package org.pcache.pmem;

import static org.pcache.pmem.OnMediaLayout.LE_INT;
import static org.pcache.pmem.OnMediaLayout.LE_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;

/**
 * pcache's extension record in the first 4 KiB of the cache device, which dm-pcache leaves unused and never reads:
 * a text naming the backing device the cache caches, so that a cache is not attached to another one. One copy, no
 * seq; a zero magic means "none recorded" (every kernel-made cache, and pcache caches made before the record).
 * <pre>
 *  0       4        8                 16
 *  +-------+--------+-----------------+---------------------------------+
 *  |  crc  | length |      magic      | text: length bytes of UTF-8      |
 *  +-------+--------+-----------------+---------------------------------+
 * </pre>
 * crc: u32 CRC32C (seed {@link Crc32c#SEED}) over bytes 4 .. 16 + length.
 *
 * <p>Persistence: {@link #write} stores text and header and persists the slot; a power cut during it leaves the old
 * record, the new one, or one whose CRC fails, which {@link #read} reports as {@link State#DAMAGED} (never as a
 * valid record naming something else).
 */
public final class BackingIdentityOnMedia {

    /** Where the record lives: the device's first 4 KiB. */
    public static final long OFFSET = 0;
    public static final long SLOT_SIZE = 4096;
    /** "PCBACKID" as a little-endian u64. */
    public static final long MAGIC = 0x44494B4341424350L;
    private static final long LENGTH_OFFSET = Integer.BYTES;
    private static final long MAGIC_OFFSET = LENGTH_OFFSET + Integer.BYTES;
    private static final long TEXT_OFFSET = MAGIC_OFFSET + Long.BYTES;
    /** The longest text the slot holds. */
    public static final int MAX_TEXT = (int) (SLOT_SIZE - TEXT_OFFSET);

    /** What the slot holds. */
    public enum State {
        /** Zero magic: nothing recorded. */
        ABSENT,
        /** A record with a good CRC. */
        VALID,
        /** The magic, but a bad length or CRC. */
        DAMAGED
    }

    /** The slot's state and, when {@link State#VALID}, its text (empty otherwise). */
    public record Contents(State state, String text) {
    }

    private BackingIdentityOnMedia() {
    }

    /** Reads the slot of {@code region}. */
    public static Contents read(PmemRegion region) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment slot = arena.allocate(SLOT_SIZE, Long.BYTES);
            region.read(OFFSET, slot, 0, SLOT_SIZE);
            if (slot.get(LE_LONG, MAGIC_OFFSET) != MAGIC) {
                return new Contents(State.ABSENT, "");
            }
            int length = slot.get(LE_INT, LENGTH_OFFSET);
            if (length < 0 || length > MAX_TEXT
                    || Crc32c.crc(slot, LENGTH_OFFSET, TEXT_OFFSET - LENGTH_OFFSET + length)
                    != slot.get(LE_INT, 0)) {
                return new Contents(State.DAMAGED, "");
            }
            byte[] text = slot.asSlice(TEXT_OFFSET, length).toArray(ValueLayout.JAVA_BYTE);
            return new Contents(State.VALID, new String(text, StandardCharsets.UTF_8));
        }
    }

    /** Records {@code text} (at most {@link #MAX_TEXT} bytes of UTF-8), durable on return. */
    public static void write(PmemRegion region, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_TEXT) {
            throw new IllegalArgumentException("backing identity of " + bytes.length + " bytes does not fit in "
                    + MAX_TEXT);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment slot = arena.allocate(SLOT_SIZE, Long.BYTES);
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, slot, TEXT_OFFSET, bytes.length);
            slot.set(LE_INT, LENGTH_OFFSET, bytes.length);
            slot.set(LE_LONG, MAGIC_OFFSET, MAGIC);
            slot.set(LE_INT, 0, Crc32c.crc(slot, LENGTH_OFFSET, TEXT_OFFSET - LENGTH_OFFSET + bytes.length));
            region.write(OFFSET, slot, 0, SLOT_SIZE);
            region.persist(OFFSET, SLOT_SIZE);
        }
    }
}
