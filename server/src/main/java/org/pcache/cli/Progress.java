package org.pcache.cli;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Progress of a long operation that counts bytes down to zero (drain, recover). On a terminal it is one line redrawn
 * in place: a bar, bytes left, rate and ETA. Otherwise (a pipe, a log file) it is a plain line at most every
 * {@link #PLAIN_INTERVAL_NANOS}, so that logs stay short. The rate is the average since the first update.
 *
 * <p>A hand-written carriage-return line rather than a progress-bar library: those bring JLine (jline-terminal and
 * jline-native), whose native loader triggers JDK 25's restricted-method warnings, for what a few lines do here.
 *
 * <p>Threading: one thread.
 */
final class Progress {

    static final long PLAIN_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);
    private static final int BAR_WIDTH = 30;

    /** Where progress goes, and how. */
    enum Output {
        /** A terminal: one line, redrawn with a carriage return. */
        TERMINAL,
        /** Anything else: plain lines. */
        PLAIN;

        /** TERMINAL when both stdin and stdout of this process are a terminal. */
        static Output ofConsole() {
            return System.console() != null && System.console().isTerminal() ? TERMINAL : PLAIN;
        }
    }

    private final PrintWriter out;
    private final String what;
    private final Output output;
    private final LongSupplier nanoClock;
    private long total;
    private long firstDone = -1;
    private long firstNanos;
    private long lastPrintNanos;
    private int lastWidth;

    /** Progress of {@code what} (the word that starts a plain line), on {@code out}. */
    Progress(PrintWriter out, String what, Output output) {
        this(out, what, output, System::nanoTime);
    }

    Progress(PrintWriter out, String what, Output output, LongSupplier nanoClock) {
        this.out = out;
        this.what = what;
        this.output = output;
        this.nanoClock = nanoClock;
    }

    /** {@code remaining} bytes are left; the total is the most that was ever left. */
    void update(long remaining) {
        total = Math.max(total, remaining);
        long done = total - remaining;
        long now = nanoClock.getAsLong();
        if (firstDone < 0) {
            firstDone = done;
            firstNanos = now;
        } else if (output == Output.PLAIN && now - lastPrintNanos < PLAIN_INTERVAL_NANOS) {
            return;
        }
        lastPrintNanos = now;
        double rate = now > firstNanos ? (done - firstDone) * 1e9 / (now - firstNanos) : 0;
        String state = ByteSize.format(remaining) + " left of " + ByteSize.format(total) + ", "
                + ByteSize.format((long) rate) + "/s, ETA " + eta(remaining, rate);
        if (output == Output.TERMINAL) {
            String line = bar(done) + " " + state;
            out.print("\r" + line + " ".repeat(Math.max(0, lastWidth - line.length())));
            lastWidth = line.length();
        } else {
            out.println(what + ": " + state);
        }
        out.flush();
    }

    /** Ends the progress display with {@code line}. */
    void finish(String line) {
        if (output == Output.TERMINAL && lastWidth > 0) {
            out.print("\r" + " ".repeat(lastWidth) + "\r");
        }
        out.println(line);
        out.flush();
        lastWidth = 0;
    }

    private String bar(long done) {
        int filled = total == 0 ? BAR_WIDTH : (int) (BAR_WIDTH * done / total);
        int percent = total == 0 ? 100 : (int) (100 * done / total);
        return "[" + "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled) + "] "
                + String.format(Locale.ROOT, "%3d%%", percent);
    }

    /** h:mm:ss to go at {@code rate} bytes per second, or "?" before anything moved. */
    static String eta(long remaining, double rate) {
        if (remaining == 0) {
            return "0:00:00";
        }
        if (rate <= 0) {
            return "?";
        }
        long seconds = (long) Math.ceil(remaining / rate);
        return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
}
