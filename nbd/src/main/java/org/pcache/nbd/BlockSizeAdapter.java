package org.pcache.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Serves the block sizes the server advertises on an export with stricter ones: clients may address single bytes
 * and send READ and WRITE up to {@link NbdProtocol#MAX_REQUEST_LENGTH} (minimum block size 1, the spec's default),
 * while the export takes {@link NbdExport#BLOCK_SIZE}-aligned ranges of at most {@link NbdExport#MAX_LENGTH}.
 *
 * <p>How: a request is cut into a partial head sector, a run of whole sectors, and a partial tail sector. The run is
 * handed to the export in parts of at most {@link NbdExport#MAX_LENGTH} (READ, WRITE and CACHE parts at once,
 * WRITE_ZEROES and TRIM, which may be up to 4 GiB, one after another). A partial sector is read into a bounce buffer
 * for a READ, and read, modified and written back for a WRITE or WRITE_ZEROES under its {@link SectorLocks} stripe, so
 * two partial writes into one sector cannot lose each other's bytes. TRIM, advisory, discards only the whole sectors;
 * CACHE widens its range to whole sectors; BLOCK_STATUS asks for the sectors around the range and cuts the answer to
 * it.
 *
 * <p>Threading: one per server, shared by every connection (the sector locks must see every writer; a connection's
 * own view, {@link #forConnection}, shares them); called from
 * reader threads, continued on whatever thread completes the export's futures.
 */
final class BlockSizeAdapter {

    private static final int SECTOR = NbdExport.BLOCK_SIZE;

    private final NbdExport export;
    private final SectorLocks locks;

    BlockSizeAdapter(NbdExport export) {
        this(export, new SectorLocks(SECTOR));
    }

    private BlockSizeAdapter(NbdExport export, SectorLocks locks) {
        this.export = export;
        this.locks = locks;
    }

    /** This adapter for one connection: its commands go to {@link NbdExport#forConnection()}, the locks are shared. */
    BlockSizeAdapter forConnection() {
        NbdExport connection = export.forConnection();
        return connection == export ? this : new BlockSizeAdapter(connection, locks);
    }

    CompletableFuture<Void> read(long offset, MemorySegment dst) {
        if (direct(offset, dst.byteSize())) {
            return export.read(offset, dst);
        }
        Span span = new Span(offset, dst.byteSize());
        List<CompletableFuture<Void>> parts = new ArrayList<>(3);
        if (span.headLength() > 0) {
            parts.add(readPartial(span.headSector(), (int) (offset - span.headSector()), dst.asSlice(0,
                    span.headLength())));
        }
        for (long at = span.wholeStart(); at < span.wholeEnd(); at += NbdExport.MAX_LENGTH) {
            long part = Math.min(NbdExport.MAX_LENGTH, span.wholeEnd() - at);
            parts.add(export.read(at, dst.asSlice(at - offset, part)));
        }
        if (span.tailLength() > 0) {
            parts.add(readPartial(span.tailSector(), 0, dst.asSlice(dst.byteSize() - span.tailLength())));
        }
        return all(parts);
    }

    CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        if (direct(offset, src.byteSize())) {
            return export.write(offset, src, durability);
        }
        Span span = new Span(offset, src.byteSize());
        List<CompletableFuture<Void>> parts = new ArrayList<>(3);
        if (span.headLength() > 0) {
            parts.add(writePartial(span.headSector(), (int) (offset - span.headSector()),
                    src.asSlice(0, span.headLength()), durability));
        }
        for (long at = span.wholeStart(); at < span.wholeEnd(); at += NbdExport.MAX_LENGTH) {
            long part = Math.min(NbdExport.MAX_LENGTH, span.wholeEnd() - at);
            parts.add(export.write(at, src.asSlice(at - offset, part), durability));
        }
        if (span.tailLength() > 0) {
            parts.add(writePartial(span.tailSector(), 0, src.asSlice(src.byteSize() - span.tailLength()),
                    durability));
        }
        return all(parts);
    }

    CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        if (direct(offset, length)) {
            return export.writeZeroes(offset, length, durability);
        }
        Span span = new Span(offset, length);
        List<CompletableFuture<Void>> parts = new ArrayList<>(3);
        if (span.headLength() > 0) {
            parts.add(zeroPartial(span.headSector(), (int) (offset - span.headSector()), span.headLength(),
                    durability));
        }
        if (span.wholeStart() < span.wholeEnd()) {
            parts.add(inTurn(span.wholeStart(), span.wholeEnd(),
                    (at, part) -> export.writeZeroes(at, part, durability)));
        }
        if (span.tailLength() > 0) {
            parts.add(zeroPartial(span.tailSector(), 0, span.tailLength(), durability));
        }
        return all(parts);
    }

    CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        Span span = new Span(offset, length);
        if (span.wholeStart() >= span.wholeEnd()) {
            return CompletableFuture.completedFuture(null);
        }
        return inTurn(span.wholeStart(), span.wholeEnd(), (at, part) -> export.trim(at, part, durability));
    }

    CompletableFuture<Void> cache(long offset, long length) {
        long start = floor(offset);
        long end = ceil(offset + length);
        List<CompletableFuture<Void>> parts = new ArrayList<>();
        for (long at = start; at < end; at += NbdExport.MAX_LENGTH) {
            parts.add(export.cache(at, Math.min(NbdExport.MAX_LENGTH, end - at)));
        }
        return all(parts);
    }

    /** Extents from {@code offset}, covering at most {@code length} bytes (the client asks again for the rest). */
    CompletableFuture<List<NbdExport.Extent>> blockStatus(long offset, long length) {
        long start = floor(offset);
        long asked = Math.min(ceil(offset + length) - start, NbdExport.MAX_LENGTH);
        return export.blockStatus(start, asked).thenApply(extents -> cut(checkExtents(extents), offset - start,
                length));
    }

    private static List<NbdExport.Extent> checkExtents(List<NbdExport.Extent> extents) {
        if (extents.isEmpty()) {
            throw new IllegalStateException("export returned no extents");
        }
        for (NbdExport.Extent extent : extents) {
            if (extent.length() % SECTOR != 0) {
                throw new IllegalStateException("export returned extent " + extent + ", not a multiple of "
                        + SECTOR);
            }
        }
        return extents;
    }

    /** The extents without their first {@code skip} bytes (less than a sector), cut at {@code length}. */
    private static List<NbdExport.Extent> cut(List<NbdExport.Extent> extents, long skip, long length) {
        if (skip == 0 && extents.stream().mapToLong(NbdExport.Extent::length).sum() <= length) {
            return extents;
        }
        List<NbdExport.Extent> cut = new ArrayList<>(extents.size());
        long covered = 0;
        for (NbdExport.Extent extent : extents) {
            long start = covered == 0 ? skip : 0;
            long extentLength = Math.min(extent.length() - start, length - covered);
            cut.add(new NbdExport.Extent(extentLength, extent.allocation()));
            covered += extentLength;
            if (covered == length) {
                break;
            }
        }
        return cut;
    }

    /** Copies {@code dst.byteSize()} bytes at {@code at} of {@code sector} into {@code dst}, via a bounce buffer. */
    private CompletableFuture<Void> readPartial(long sector, int at, MemorySegment dst) {
        MemorySegment bounce = Arena.ofAuto().allocate(SECTOR, SECTOR);
        return export.read(sector, bounce).thenRun(() -> MemorySegment.copy(bounce, at, dst, 0, dst.byteSize()));
    }

    /** Read-modify-write of {@code sector}: {@code src} goes at {@code at}, the rest of the sector stays. */
    private CompletableFuture<Void> writePartial(long sector, int at, MemorySegment src, Durability durability) {
        return locks.run(sector / SECTOR, scratch -> export.read(sector, scratch).thenCompose(ignored -> {
            MemorySegment.copy(src, 0, scratch, at, src.byteSize());
            return export.write(sector, scratch, durability);
        }));
    }

    private CompletableFuture<Void> zeroPartial(long sector, int at, long length, Durability durability) {
        return locks.run(sector / SECTOR, scratch -> export.read(sector, scratch).thenCompose(ignored -> {
            scratch.asSlice(at, length).fill((byte) 0);
            return export.write(sector, scratch, durability);
        }));
    }

    /** The export operation on {@code [start, end)} in parts of at most the export's maximum, one after another. */
    private static CompletableFuture<Void> inTurn(long start, long end, RangeOperation operation) {
        CompletableFuture<Void> chain = operation.apply(start, Math.min(NbdExport.MAX_LENGTH, end - start));
        for (long at = start + NbdExport.MAX_LENGTH; at < end; at += NbdExport.MAX_LENGTH) {
            long from = at;
            chain = chain.thenCompose(ignored -> operation.apply(from, Math.min(NbdExport.MAX_LENGTH, end - from)));
        }
        return chain;
    }

    private static CompletableFuture<Void> all(List<CompletableFuture<Void>> parts) {
        return parts.size() == 1 ? parts.getFirst() : CompletableFuture.allOf(parts.toArray(CompletableFuture[]::new));
    }

    /** An aligned request the export takes as it is: what qemu, the libnbd tools and fio send. */
    private static boolean direct(long offset, long length) {
        return offset % SECTOR == 0 && length % SECTOR == 0 && length <= NbdExport.MAX_LENGTH;
    }

    private static long floor(long offset) {
        return offset - offset % SECTOR;
    }

    private static long ceil(long offset) {
        return floor(offset + SECTOR - 1);
    }

    @FunctionalInterface
    private interface RangeOperation {
        CompletableFuture<Void> apply(long offset, long length);
    }

    /**
     * A byte range cut at sector boundaries: the partial head sector, the whole sectors, the partial tail sector. A
     * range inside one sector is all head.
     */
    private record Span(long offset, long length) {

        long headSector() {
            return floor(offset);
        }

        int headLength() {
            if (offset % SECTOR == 0) {
                return 0;
            }
            return (int) Math.min(headSector() + SECTOR - offset, length);
        }

        long wholeStart() {
            return ceil(offset);
        }

        long wholeEnd() {
            return Math.max(wholeStart(), floor(offset + length));
        }

        long tailSector() {
            return floor(offset + length);
        }

        int tailLength() {
            long end = offset + length;
            return end % SECTOR == 0 || tailSector() < wholeStart() ? 0 : (int) (end - tailSector());
        }
    }
}
