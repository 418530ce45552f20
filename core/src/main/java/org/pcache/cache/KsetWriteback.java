package org.pcache.cache;

import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.BackingOp;
import org.pcache.backing.MemoryRequest;
import org.pcache.pmem.CorruptMediaException;
import org.pcache.pmem.PmemRegion;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Writes one kset's dirty data to the backing device (the core of dm-pcache's cache_writeback): the kset's live keys
 * are collapsed so later keys win, the dirty extents go out in LBA order straight from the region, all in flight at
 * once as one batch (their completions reach the backing device's completion worker together), and the backing
 * device is flushed after the last one completed. Used by {@link Writeback} and, offline, by
 * {@link CacheImage#recover}.
 *
 * <p>Threading: owned by one thread.
 */
final class KsetWriteback {

    private static final long WRITE_TIMEOUT_SECONDS = 60;

    private final PmemRegion region;
    private final BackingDevice backing;
    private final boolean dataCrc;
    private final KeySubtree collapsed = new KeySubtree();
    private long dirtyBytes;

    KsetWriteback(PmemRegion region, BackingDevice backing, boolean dataCrc) {
        this.region = region;
        this.backing = backing;
        this.dataCrc = dataCrc;
    }

    /** Takes the live keys of the kset {@code reader} just read as NORMAL (checking their data CRC if kept). */
    void load(KsetReader reader) throws CorruptMediaException {
        collapsed.clear();
        dirtyBytes = 0;
        for (int i = 0; i < reader.keyNum(); i++) {
            CacheKey key = reader.key(i);
            if (key.segGen < key.seg.gen()) {
                continue;
            }
            if (dataCrc) {
                reader.verifyCrc(i, key);
            }
            if (key.isDirty()) {
                dirtyBytes += key.len;
            }
            collapsed.insert(key);
        }
    }

    /** Bytes of the dirty key records loaded (overwritten ones included): what the log counted for this kset. */
    long dirtyBytes() {
        return dirtyBytes;
    }

    /**
     * Writes every dirty extent of the loaded kset, then flushes the backing device. Returns the bytes written; throws
     * the first backing error (the kset may then be written again, all of it).
     */
    long write() throws IOException, InterruptedException {
        int count = 0;
        for (int i = 0; i < collapsed.size(); i++) {
            if (collapsed.keyAt(i).isDirty()) {
                count++;
            }
        }
        CountDownLatch done = new CountDownLatch(count);
        AtomicReference<BackingIoException> firstError = new AtomicReference<>();
        BackingCompletion completion = (request, error) -> {
            if (error != null) {
                firstError.compareAndSet(null, error);
            }
            done.countDown();
        };
        List<MemoryRequest> requests = new ArrayList<>(count);
        long bytes = 0;
        for (int i = 0; i < collapsed.size(); i++) {
            CacheKey key = collapsed.keyAt(i);
            if (!key.isDirty()) {
                continue;
            }
            bytes += key.len;
            requests.add(new MemoryRequest(BackingOp.WRITE, region.view(key.dataRegionOffset(), key.len), key.off,
                    completion));
        }
        backing.submitDirect(requests); // one hand-over to the completion worker, not one wake-up per write
        if (!done.await(WRITE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
            throw new IOException("backing writes did not complete within " + WRITE_TIMEOUT_SECONDS + " s");
        }
        if (firstError.get() != null) {
            throw firstError.get();
        }
        backing.flush(); // rule 4: the kset's writes are durable before dirty_tail moves past it
        return bytes;
    }
}
