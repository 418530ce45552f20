package org.pcache.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.pcache.admin.AdminClient;
import org.pcache.admin.AdminException;
import org.pcache.admin.StatusDocument;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code pcache status}: dm-pcache's status line of the running cache, or with {@code --json} every field by name
 * plus the statistics (README.md, "What each status field means"), or with {@code --watch} the dashboard's numbers
 * redrawn in place every second ({@link StatusScreen}) until interrupted.
 */
@Command(name = "status",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {"Print the status of the running cache: dm-pcache's nine fields on one line, in order:",
                "sb_flags seg_total cache_segs segs_used gc_percent cache_flags key_head dirty_tail key_tail",
                "(flags in hex, positions as seg:off), then, only when the cache failed, a second line",
                "'failed: ' and the cause. --json prints them by name, with health, request counters, bytes, "
                        + "writeback, GC, per-command latency and uptime. --watch redraws the segment map, tails, "
                        + "usage, hit ratio, writeback rate and ETA and latency every second until Ctrl-C."},
        footer = {"", "Exit status: 0 printed, 1 the admin endpoint cannot be reached, 2 wrong command line."})
final class StatusCommand implements Callable<Integer> {

    /** How often --watch redraws. */
    private static final Duration WATCH_INTERVAL = Duration.ofSeconds(1);

    @Spec
    private CommandSpec spec;

    @Mixin
    private AdminOption admin;

    @Option(names = "--json", description = "Print the status document (JSON) instead of the status line.")
    private boolean json;

    @Option(names = "--watch", description = "Redraw the numbers in place every second until interrupted (Ctrl-C).")
    private boolean watch;

    @Override
    public Integer call() throws CommandException {
        PrintWriter out = spec.commandLine().getOut();
        if (json && watch) {
            throw new ParameterException(spec.commandLine(), "--json and --watch cannot be combined");
        }
        try (AdminClient client = admin.client()) {
            if (watch) {
                watch(client, out);
            } else if (json) {
                out.println(client.statusJson().strip());
            } else {
                StatusDocument status = client.status();
                out.println(status.statusLine());
                if (status.failed()) {
                    out.println("failed: " + status.failure());
                }
                if (status.backing().disconnected()) {
                    out.println("backing disconnected, reconnecting: " + status.backing().lastError());
                }
            }
        } catch (AdminException e) {
            throw AdminOption.failure(e);
        }
        out.flush();
        return 0;
    }

    /** Redraws until interrupted; an endpoint that stops answering ends it with exit status 1. */
    private static void watch(AdminClient client, PrintWriter out) throws AdminException {
        while (true) {
            out.print(StatusScreen.frame(client.status()));
            out.flush();
            try {
                Thread.sleep(WATCH_INTERVAL);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
