package org.pcache.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.pcache.backing.BackingDevice;
import org.pcache.cache.BackingBlockSizeException;
import org.pcache.cache.CacheImage;
import org.pcache.pmem.CorruptMediaException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code pcache recover}: writes back, offline, every dirty extent of a cache image onto a backing device, kset by
 * kset in log order with a flush after each ({@link CacheImage#recover}), as writeback would have. It rescues the
 * data of a cache whose server died and will not run again. The image is not changed: a server started on it
 * afterwards writes the same data back once more, which is harmless.
 */
@Command(name = "recover",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Write every dirty extent of a cache image back onto a backing device, offline, in log order "
                + "(what writeback would have done): rescues the data of a cache whose server died. Shows progress. "
                + "The cache image is read-only here; the backing file must exist (it is not created). Refuses a "
                + "cache a server is running on."},
        footer = {"", "Exit status: 0 everything written back, 1 a file cannot be opened or is in use or a backing "
                + "write failed, 2 wrong command line, 3 the image is corrupt (ksets before the problem were "
                + "written)."})
final class RecoverCommand implements Callable<Integer> {

    @Spec
    private CommandSpec spec;

    @Option(names = "--cache", paramLabel = "FILE", required = true, description = "The cache image.")
    private Path cacheFile;

    @Option(names = "--backing", paramLabel = "FILE|URI", required = true,
            description = "Where the data goes: a file or block device, or an NBD URI (nbd://HOST[:PORT][/EXPORT], "
                    + "nbd+unix:///EXPORT?socket=PATH).")
    private String backingSpec;

    @Override
    public Integer call() throws CommandException {
        PrintWriter out = spec.commandLine().getOut();
        try (CacheImageFile file = CacheImageFile.open(cacheFile)) {
            BackingDevice backing = BackingDevice.start(BackingSpec.openExisting(backingSpec));
            try {
                recover(file, backing, out);
            } finally {
                backing.stop();
            }
        }
        return 0;
    }

    private void recover(CacheImageFile file, BackingDevice backing, PrintWriter out) throws CommandException {
        long started = System.nanoTime();
        CacheImage.Recovery recovery;
        try {
            CacheImage image = file.inspect(backing.size());
            long dirty = image.dirtyBytes();
            if (dirty == 0) {
                out.println("recover: nothing to write back, dirty_tail " + image.dirtyTail() + " is the end of the "
                        + "log");
                out.flush();
                return;
            }
            Progress progress = new Progress(out, "recover", Progress.Output.ofConsole());
            progress.update(dirty);
            recovery = image.recover(backing, dealt -> progress.update(dirty - dealt));
            progress.finish("recover: " + recovery.ksets() + " ksets, " + recovery.bytes() + " bytes written to "
                    + backingSpec + " in " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started) + " ms");
        } catch (CorruptMediaException e) {
            throw file.corrupt(e);
        } catch (BackingBlockSizeException e) {
            throw new CommandException("backing " + backingSpec + " cannot be used: " + e.getMessage(), e);
        } catch (IOException e) {
            throw CommandException.of("writing to backing " + backingSpec + " failed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CommandException("interrupted; the backing device holds the ksets written so far", e);
        }
    }
}
