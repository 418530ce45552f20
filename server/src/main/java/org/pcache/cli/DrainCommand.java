package org.pcache.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Callable;
import org.pcache.admin.AdminClient;
import org.pcache.admin.AdminException;
import org.pcache.admin.Drain;
import org.pcache.admin.StatusDocument;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code pcache drain}: writes everything back and waits until dirty_tail == key_head, showing the dirty bytes left,
 * the rate and an ETA. A drain covers the log as it was when it started (after a flush); if clients wrote meanwhile,
 * another round follows, until a status taken after a drain shows nothing dirty.
 *
 * <p>Progress comes from polling {@code GET /status} every {@link #POLL_INTERVAL}: a display refresh, not a wait on
 * the drain, whose end is the drain state in the same document. When writeback cannot progress (the backing device's
 * server is disconnected, or backing writes keep failing) a line says why, once each time the reason changes.
 */
@Command(name = "drain",
        mixinStandardHelpOptions = true,
        description = {"Write every dirty byte of the running cache back to the backing device, and wait until "
                + "dirty_tail == key_head. Shows a progress bar (dirty bytes left, rate, ETA) on a terminal, plain "
                + "lines otherwise. The cache keeps serving meanwhile; writes that arrive during the drain are "
                + "drained too."},
        footer = {"", "Exit status: 0 everything written back, 1 the admin endpoint cannot be reached or writeback "
                + "failed, 2 wrong command line."})
final class DrainCommand implements Callable<Integer> {

    static final Duration POLL_INTERVAL = Duration.ofMillis(200);

    @Spec
    private CommandSpec spec;

    @Mixin
    private AdminOption admin;

    @Override
    public Integer call() throws CommandException {
        PrintWriter out = spec.commandLine().getOut();
        Progress progress = new Progress(out, "drain", Progress.Output.ofConsole());
        try (AdminClient client = admin.client()) {
            while (true) {
                Drain.Status started = client.startDrain();
                StatusDocument status = await(client, started.id(), progress);
                Drain.Status drain = status.drain();
                if (drain.id() != started.id()) {
                    continue; // another client started the next drain already: join it
                }
                if (!drain.done()) {
                    throw new CommandException("drain failed: " + drain.error());
                }
                if (status.clean()) {
                    progress.finish("drain: done, dirty_tail " + status.dirtyTail() + " == key_head "
                            + status.keyHead());
                    return 0;
                }
                progress.finish("drain: clients wrote during the drain; draining again");
            }
        } catch (AdminException e) {
            throw AdminOption.failure(e);
        }
    }

    /** Polls the status until drain {@code id} ended (or a later one started), showing progress. */
    private static StatusDocument await(AdminClient client, long id, Progress progress)
            throws AdminException, CommandException {
        StatusDocument status = client.status();
        String stalled = null;
        long errorsAtProgress = status.writeback().errors();
        long written = status.bytesToBacking();
        while (status.drain().id() == id && !status.drain().ended()) {
            if (status.bytesToBacking() != written) {
                written = status.bytesToBacking();
                errorsAtProgress = status.writeback().errors();
            }
            String reason = stallReason(status, errorsAtProgress);
            if (!Objects.equals(reason, stalled)) {
                progress.finish(reason != null ? "drain: not progressing: " + reason
                        : "drain: writeback progressing again");
                stalled = reason;
            }
            progress.update(status.dirtyBytes());
            try {
                Thread.sleep(POLL_INTERVAL);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CommandException("interrupted while draining (the drain goes on in the server)", e);
            }
            status = client.status();
        }
        return status;
    }

    /**
     * Why writeback is not progressing, or null: the backing is disconnected, or writeback met backing errors since it
     * last wrote anything back (when it had met {@code errorsAtProgress}).
     */
    static String stallReason(StatusDocument status, long errorsAtProgress) {
        if (status.backing().disconnected()) {
            return "backing disconnected, reconnecting (" + status.backing().lastError() + ")";
        }
        if (status.writeback().errors() > errorsAtProgress) {
            return "backing writes fail, writeback retrying (" + status.writeback().lastError() + ")";
        }
        return null;
    }
}
