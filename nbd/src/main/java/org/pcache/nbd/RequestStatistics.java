package org.pcache.nbd;

import java.util.List;

/**
 * The latency of the commands an {@link NbdServer} handed its export, one {@link RequestLatency} per kind of command
 * in {@link #TIMED}: each is timed from the call on the export to the completion of its future, refused requests
 * (which never reach the export) and BLOCK_STATUS are not. Plain numbers: publishing them is the caller's business.
 *
 * <p>Threading: recorded from every connection's threads and read from any thread (see {@link RequestLatency}).
 */
public final class RequestStatistics {

    /** The commands that are timed. */
    public static final List<NbdCommand> TIMED = List.of(NbdCommand.READ, NbdCommand.WRITE, NbdCommand.FLUSH,
            NbdCommand.TRIM, NbdCommand.WRITE_ZEROES, NbdCommand.CACHE);

    /** By {@link NbdCommand#ordinal()}; null for a command that is not timed. */
    private final RequestLatency[] latencies = new RequestLatency[NbdCommand.values().length];

    RequestStatistics() {
        for (NbdCommand command : TIMED) {
            latencies[command.ordinal()] = new RequestLatency(System::nanoTime);
        }
    }

    /** One {@code command} took {@code nanos}; nothing for a command that is not timed. Never blocks. */
    void record(NbdCommand command, long nanos) {
        RequestLatency latency = latencies[command.ordinal()];
        if (latency != null) {
            latency.record(nanos);
        }
    }

    /** The latency of {@code command}, one of {@link #TIMED}. */
    public RequestLatency latency(NbdCommand command) {
        RequestLatency latency = latencies[command.ordinal()];
        if (latency == null) {
            throw new IllegalArgumentException(command + " is not timed");
        }
        return latency;
    }
}
