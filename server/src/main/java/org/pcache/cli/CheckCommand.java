package org.pcache.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.pcache.cache.CacheImage;
import org.pcache.pmem.CorruptMediaException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code pcache check}: validates every structure of a cache image offline, read-only. Each problem is one line on
 * stdout; a clean image gets one summary line instead.
 */
@Command(name = "check",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Check a cache image offline: superblock, cache_info, segment chain, tails, every kset and key "
                + "of the log (and the data CRC of every live key when the cache keeps them), and that dirty_tail lies "
                + "on the log. Never writes, never creates the file; refuses a cache a server is running on. "
                + "Works on images made by the kernel's dm-pcache (same format)."},
        footer = {"", "SIZE is a byte count with an optional K, M, G or T suffix (powers of 1024), e.g. 8G.",
                "Exit status: 0 clean, 1 the file cannot be read or is in use, 2 wrong command line, 3 problems found "
                        + "(one line each on stdout)."})
final class CheckCommand implements Callable<Integer> {

    @Spec
    private CommandSpec spec;

    @Option(names = "--cache", paramLabel = "FILE", required = true, description = "The cache image.")
    private Path cacheFile;

    @Option(names = "--backing-size", paramLabel = "SIZE", converter = ByteSize.class,
            description = "Size of the backing device: every key must lie inside it (default: unknown, not checked).")
    private Long backingSize;

    @Override
    public Integer call() throws CommandException {
        PrintWriter out = spec.commandLine().getOut();
        List<String> problems = new ArrayList<>();
        long dirtyBytes = 0;
        String backing = "";
        try (CacheImageFile file = CacheImageFile.open(cacheFile)) {
            backing = file.backingIdentity();
            CacheImage image = file.inspect(backingSize == null ? Long.MAX_VALUE : backingSize);
            problems.addAll(image.check());
            if (problems.isEmpty()) {
                dirtyBytes = image.dirtyBytes();
            }
        } catch (CorruptMediaException e) {
            problems.add(e.getMessage());
        }
        for (String problem : problems) {
            out.println(problem);
        }
        if (problems.isEmpty()) {
            out.println(cacheFile + ": clean, " + dirtyBytes + " dirty bytes not yet written back; backing: "
                    + backing);
        }
        out.flush();
        return problems.isEmpty() ? 0 : PcacheCommand.CORRUPT;
    }
}
