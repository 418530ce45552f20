package org.pcache.example;

// tag::example[]
import org.pcache.backing.BackingDevice;
import org.pcache.backing.FileEngine;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Durability;
import org.pcache.cache.Pcache;
import org.pcache.pmem.CacheDeviceLayout;
import org.pcache.pmem.MappedPmemRegion;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/** Embeds a cache: the complete example of docs/library.md. */
public final class LibraryExample {

    private static final int BLOCK = 4096;

    private LibraryExample() {
    }

    /**
     * Puts a cache held in {@code cacheFile} in front of {@code backingFile}, reads block 0, overwrites it with
     * {@code fill}, and writes everything back before closing. Returns the first byte block 0 held before the write.
     */
    public static byte run(Path cacheFile, Path backingFile, byte fill) throws IOException {
        try (MappedPmemRegion region = MappedPmemRegion.open(cacheFile, CacheDeviceLayout.MIN_SIZE);
             BackingDevice backing = BackingDevice.start(FileEngine.open(backingFile, FileEngine.Options.DEFAULT));
             Arena arena = Arena.ofShared()) {
            CacheOptions options = CacheOptions.defaults().withDataCrc(true);
            // Formats a blank region; otherwise validates it and replays its log.
            try (Pcache cache = Pcache.open(region, backing, options)) {
                MemorySegment before = arena.allocate(BLOCK, Pcache.SECTOR_SIZE);
                cache.read(0, before);

                MemorySegment block = arena.allocate(BLOCK, Pcache.SECTOR_SIZE);
                block.fill(fill);
                cache.writeAsync(0, block, Durability.BUFFERED)
                        .thenCompose(written -> cache.flushAsync())
                        .join();

                MemorySegment after = arena.allocate(BLOCK, Pcache.SECTOR_SIZE);
                cache.readAsync(0, after).join();
                if (after.mismatch(block) != -1) {
                    throw new IOException("block 0 did not read back as written");
                }

                cache.drain();
                System.out.println(cache.status().statusLine());
                return before.get(ValueLayout.JAVA_BYTE, 0);
            }
        }
    }
}
// end::example[]
