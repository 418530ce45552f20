package org.pcache.pmem;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The dirty pages the kernel shows for a mapping in {@code /proc/self/smaps}: on a disk file system an msync writes
 * the pages back and cleans them, so a count of 0 after a drain proves the drain msynced them (on tmpfs it would not).
 */
final class DirtyPages {

    /** A directory on a disk file system (not tmpfs), for files whose msync must write pages back. */
    static final Path DISK_DIR = Path.of("/var/tmp");

    private DirtyPages() {
    }

    /** The lines of {@code /proc/self/maps} that map {@code file}: one per mapping (or part of one) of it. */
    static List<String> mappingsOf(Path file) throws IOException {
        String name = file.toRealPath().toString();
        return Files.readAllLines(Path.of("/proc/self/maps")).stream().filter(line -> line.endsWith(" " + name))
                .toList();
    }

    /** The dirty kilobytes (shared and private) of the mapping that starts at {@code mapping}'s address. */
    static long dirtyKb(MemorySegment mapping) throws IOException {
        String start = Long.toHexString(mapping.address());
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith(start + "-")) {
                long kb = 0;
                for (int j = i + 1; j < lines.size() && !lines.get(j).matches("^[0-9a-f]+-.*"); j++) {
                    String line = lines.get(j);
                    if (line.startsWith("Shared_Dirty:") || line.startsWith("Private_Dirty:")) {
                        kb += Long.parseLong(line.replaceAll("[^0-9]", ""));
                    }
                }
                return kb;
            }
        }
        throw new AssertionError("no mapping at 0x" + start + " in /proc/self/smaps");
    }
}
