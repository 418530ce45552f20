package org.pcache.nbd;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;

/**
 * What an {@link NbdServer} serves: a byte range with a name, and asynchronous block operations on it.
 *
 * <p>Contract for every operation: the server has validated the request before calling, so {@code offset}
 * and {@code length} are multiples of {@link #BLOCK_SIZE}, {@code length} is in {@code (0, }{@link #MAX_LENGTH}{@code ]}
 * (the server splits longer requests, read-modify-writes partial sectors and shortens BLOCK_STATUS ones:
 * {@code BlockSizeAdapter}), and the range lies inside {@link #size()}. A buffer passed in
 * belongs to the export until the returned future completes; the future may complete on any thread, including
 * the caller's. A failure should be an {@link NbdErrorException} when a particular NBD error is meant;
 * anything else is mapped by the server ({@code ErrorTranslation}).
 *
 * <p>Threading: operations are called concurrently from every connection's reader thread.
 */
public interface NbdExport {

    /** Unit of every offset and length the server hands an export, and of its size. */
    int BLOCK_SIZE = 512;
    /** Longest range the server hands an export in one call. */
    int MAX_LENGTH = NbdProtocol.MAX_PAYLOAD_LENGTH;

    /** Features an export offers; the server turns them into transmission flags. */
    enum Capability {
        /** {@link #flush} makes writes persistent (NBD_FLAG_SEND_FLUSH). */
        FLUSH,
        /** {@link Durability#FUA} is honoured (NBD_FLAG_SEND_FUA). */
        FUA,
        /** {@link #trim} discards (NBD_FLAG_SEND_TRIM). */
        TRIM,
        /** {@link #writeZeroes} is supported (NBD_FLAG_SEND_WRITE_ZEROES). */
        WRITE_ZEROES,
        /**
         * {@link #writeZeroes} is faster than writing zeroes. Without it a FAST_ZERO request fails at once with
         * ENOTSUP, as proto.md allows, and never reaches the export.
         */
        FAST_ZERO,
        /** {@link #cache} does something useful (NBD_FLAG_SEND_CACHE). */
        CACHE,
        /** Every connection sees one shared state and {@link #flush} is global (NBD_FLAG_CAN_MULTI_CONN). */
        MULTI_CONN,
        /** Writes, trims and zeroing are refused with EPERM (NBD_FLAG_READ_ONLY). */
        READ_ONLY
    }

    /** base:allocation status of a run of bytes. */
    enum Allocation {
        /** Allocated, contents unknown: the status any export may always report. */
        DATA(0),
        /** Allocated and reads as zeroes. */
        ZERO(NbdProtocol.STATE_ZERO),
        /** Not allocated; reads as zeroes. */
        HOLE(NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO);

        private final int flags;

        Allocation(int flags) {
            this.flags = flags;
        }

        /** The status flags of the NBD_REPLY_TYPE_BLOCK_STATUS descriptor. */
        public int flags() {
            return flags;
        }
    }

    /** A run of {@code length} bytes sharing one allocation status. */
    record Extent(long length, Allocation allocation) {
        public Extent {
            if (length <= 0) {
                throw new IllegalArgumentException("extent length " + length + " (expected > 0)");
            }
        }
    }

    /** Name clients select the export by; the empty name also selects it. */
    String name();

    /** Human-readable description for NBD_INFO_DESCRIPTION and NBD_OPT_LIST; may be empty. */
    String description();

    /** Size in bytes, a multiple of {@link #BLOCK_SIZE}. */
    long size();

    Set<Capability> capabilities();

    /** Fills {@code dst} with the bytes at {@code offset}. */
    CompletableFuture<Void> read(long offset, MemorySegment dst);

    /** Writes {@code src} at {@code offset}; with {@link Durability#FUA} completes only once it is persistent. */
    CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability);

    /**
     * Makes every write that completed before this call persistent, whichever connection it came from: the
     * server advertises multi-conn on that assumption, so a client may flush on one connection the writes it
     * completed on others (proto.md, NBD_FLAG_CAN_MULTI_CONN).
     */
    CompletableFuture<Void> flush();

    /** Discards the range; reads of it may return anything until it is written again. */
    CompletableFuture<Void> trim(long offset, long length, Durability durability);

    /** Makes the range read as zeroes. Must not leave holes that a later write could fail on (NO_HOLE). */
    CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability);

    /** Hint that the range will be read soon. The default does nothing and succeeds. */
    default CompletableFuture<Void> cache(long offset, long length) {
        return CompletableFuture.completedFuture(null);
    }

    /**
     * base:allocation status of consecutive runs starting at {@code offset}: at least one extent, the first
     * starting at {@code offset}; they may cover less than {@code length} (the client asks again). The default
     * reports the whole range as {@link Allocation#DATA}.
     */
    default CompletableFuture<List<Extent>> blockStatus(long offset, long length) {
        return CompletableFuture.completedFuture(List.of(new Extent(length, Allocation.DATA)));
    }

    /**
     * The export as one connection sees it: the server asks once per connection, when it accepts it, and sends that
     * connection's commands to what this returns, so an export can tell its clients apart (the cache detects each
     * connection's sequential runs). The default is this export itself.
     */
    default NbdExport forConnection() {
        return this;
    }
}
