package org.pcache.cache;

/**
 * One extent of the index: {@code [off, off + len)} of the backing device, cached at {@code segOff} in the data area
 * of {@code seg} (dm-pcache's pcache_cache_key).
 *
 * <p>Kinds, by {@link #flags}: dirty (no flag: written by a client, not yet written back), {@link #FLAG_CLEAN} (filled
 * from the backing device by a read miss; writeback skips it) and {@link #FLAG_EMPTY} (a placeholder for a miss read
 * in flight: no segment, never persisted), and pcache's data-less kinds, which reference no segment and have no data:
 * {@link #FLAG_ZERO} (reads as zeroes, written back as a write-zeroes), {@link #FLAG_DISCARD} (reads as zeroes,
 * written back as a discard) and {@link #FLAG_INVALIDATE} (the range was dropped from the cache; never in the index,
 * written back as nothing). For a data-less key {@link #seg} is null and {@link #segGen} holds its birth: the log
 * sequence number of the kset log's head when it was appended (at replay, its kset's), which GC compares with the
 * kset it reclaims ({@link GarbageCollector}). ZERO and DISCARD keys count as dirty until written back. One more bit, {@link #FLAG_IN_TREE}, is memory-only state: it shares the
 * field because a boolean of its own would round the object up from 48 to 56 bytes, and the index holds one key per
 * cached extent.
 *
 * <p>Invariants: {@code len > 0} while the key is in a subtree; a key with data is valid only while
 * {@code segGen == seg.gen()} — once its segment is reclaimed the key is stale and every lookup treats it as absent.
 * {@link #crc} is null unless the cache keeps data CRCs.
 *
 * <p>Threading: fields change only under the lock of the subtree that holds the key (or before it is inserted).
 */
final class CacheKey {

    static final int FLAG_EMPTY = 1;
    static final int FLAG_CLEAN = 1 << 1;
    static final int FLAG_ZERO = 1 << 2;
    static final int FLAG_DISCARD = 1 << 3;
    static final int FLAG_INVALIDATE = 1 << 4;
    static final int DATALESS_FLAGS = FLAG_ZERO | FLAG_DISCARD | FLAG_INVALIDATE;
    /** The key is in a subtree; cleared when it leaves, which a completing miss read checks. Never persisted. */
    static final int FLAG_IN_TREE = 1 << 8;

    long off;
    int len;
    int flags;
    CacheSegment seg;
    int segOff;
    long segGen;
    /** The CRC of the data the key's record covers, or null when the cache keeps none. */
    DataCrc crc;

    CacheKey(long off, int len, int flags) {
        this.off = off;
        this.len = len;
        this.flags = flags;
    }

    static CacheKey placeholder(long off, int len) {
        return new CacheKey(off, len, FLAG_EMPTY);
    }

    /** A data-less key of kind {@code flag} (ZERO, DISCARD or INVALIDATE); {@link Kset#append} sets its birth. */
    static CacheKey dataless(long off, int len, int flag) {
        return new CacheKey(off, len, flag);
    }

    long end() {
        return off + len;
    }

    boolean isEmpty() {
        return (flags & FLAG_EMPTY) != 0;
    }

    boolean isClean() {
        return (flags & FLAG_CLEAN) != 0;
    }

    /** Dirty: written by a client and not yet written back (data, zeroes or a discard). */
    boolean isDirty() {
        return (flags & (FLAG_EMPTY | FLAG_CLEAN | FLAG_INVALIDATE)) == 0;
    }

    /** A ZERO, DISCARD or INVALIDATE key: no segment, no data. */
    boolean isDataless() {
        return (flags & DATALESS_FLAGS) != 0;
    }

    /** An INVALIDATE key: it only cuts the keys it overlaps and never stays in the index. */
    boolean isInvalidation() {
        return (flags & FLAG_INVALIDATE) != 0;
    }

    /** A ZERO or DISCARD key: the range reads as zeroes. */
    boolean readsZeroes() {
        return (flags & (FLAG_ZERO | FLAG_DISCARD)) != 0;
    }

    /** Bytes of cache data the key holds: its length, or 0 for a data-less key. */
    long dataBytes() {
        return isDataless() ? 0 : len;
    }

    boolean inTree() {
        return (flags & FLAG_IN_TREE) != 0;
    }

    void enterTree() {
        flags |= FLAG_IN_TREE;
    }

    void leaveTree() {
        flags &= ~FLAG_IN_TREE;
    }

    /** A filled placeholder: from EMPTY to CLEAN, still where it was in the index. */
    void becomeClean() {
        flags = (flags & FLAG_IN_TREE) | FLAG_CLEAN;
    }

    /** Points the key at its data: {@code len} bytes at {@code segOff} of {@code seg}, as of generation {@code gen}. */
    void place(CacheSegment segment, int offset, long gen) {
        this.seg = segment;
        this.segOff = offset;
        this.segGen = gen;
    }

    /** True when the key's segment was reclaimed after the key was written: the key is then absent (never data-less). */
    boolean isStale() {
        return seg != null && segGen != seg.gen();
    }

    /** Drops the first {@code n} bytes: the key then starts {@code n} bytes later, and so does its data. */
    void cutFront(int n) {
        off += n;
        len -= n;
        if (seg != null) {
            segOff += n;
        }
    }

    /** Drops the last {@code n} bytes. */
    void cutBack(int n) {
        len -= n;
    }

    /** A copy of this key for the part starting {@code n} bytes in (the right piece of a split). */
    CacheKey splitAt(int n) {
        CacheKey right = new CacheKey(off, len, flags & ~FLAG_IN_TREE);
        right.seg = seg;
        right.segOff = segOff;
        right.segGen = segGen;
        right.crc = crc;
        right.cutFront(n);
        return right;
    }

    /** Region byte offset of the key's data. */
    long dataRegionOffset() {
        return seg.dataOffset() + segOff;
    }

    @Override
    public String toString() {
        return "key off=" + off + " len=" + len + " flags=" + (flags & ~FLAG_IN_TREE)
                + (seg == null ? "" : " seg=" + seg.id() + " seg_off=" + segOff + " gen=" + segGen);
    }
}
