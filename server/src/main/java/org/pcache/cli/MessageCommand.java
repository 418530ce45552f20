package org.pcache.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.pcache.admin.AdminClient;
import org.pcache.admin.AdminException;
import org.pcache.admin.CacheMessage;
import org.pcache.admin.InvalidMessageException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code pcache message gc_percent N} (dm-pcache's {@code dmsetup message}) and {@code pcache message mode MODE}. The message is checked here first (a
 * wrong one is a usage error and never reaches the server), then sent; it returns once the cache persisted it.
 */
@Command(name = "message",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Send a message to the running cache, as dmsetup message does to dm-pcache. gc_percent N: the "
                + "segment usage (0-90, a whole number) at which GC reclaims written-back data, persisted in the "
                + "cache. writeback_low N, writeback_high N: writeback's watermarks, in percent (0-100) of the data "
                + "area dirty (below low writeback idles, from high on it runs at full depth; low <= high), until "
                + "the server stops. mode MODE (writeback, writethrough, writearound, writeonly, passthrough): the "
                + "cache mode, persisted. The keyword is case-insensitive; the value takes effect at once."},
        footer = {"", "Exit status: 0 applied, 1 the admin endpoint cannot be reached or refused it, 2 wrong command "
                + "line or message."})
final class MessageCommand implements Callable<Integer> {

    @Spec
    private CommandSpec spec;

    @Mixin
    private AdminOption admin;

    @Parameters(paramLabel = "WORD", arity = "0..*",
            description = "The message: gc_percent N, writeback_low N, writeback_high N or mode MODE.")
    private List<String> words = new ArrayList<>();

    @Override
    public Integer call() throws CommandException {
        CacheMessage message;
        try {
            message = CacheMessage.parse(words);
        } catch (InvalidMessageException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        try (AdminClient client = admin.client()) {
            client.message(message);
        } catch (AdminException e) {
            throw AdminOption.failure(e);
        }
        return 0;
    }
}
