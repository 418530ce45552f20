package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The progress display of drain and recover, on a clock the test moves. */
class ProgressTest {

    private static final long SECOND = TimeUnit.SECONDS.toNanos(1);
    private static final long MIB = 1 << 20;

    private final StringWriter text = new StringWriter();
    private long now;

    @Test
    void plainLinesComeAtMostOncePerSecondWithBytesLeftRateAndEta() {
        Progress progress = new Progress(new PrintWriter(text), "drain", Progress.Output.PLAIN, () -> now);
        progress.update(100 * MIB);
        now += SECOND / 2;
        progress.update(90 * MIB);
        now += SECOND / 2;
        progress.update(80 * MIB);
        progress.finish("drain: done");

        assertThat(text.toString().lines().toList()).containsExactly(
                "drain: 100.0 MiB left of 100.0 MiB, 0 B/s, ETA ?",
                "drain: 80.0 MiB left of 100.0 MiB, 20.0 MiB/s, ETA 0:00:04",
                "drain: done");
    }

    @Test
    void aTerminalGetsOneLineRedrawnInPlaceWithABarAndAClearedEnd() {
        Progress progress = new Progress(new PrintWriter(text), "recover", Progress.Output.TERMINAL, () -> now);
        progress.update(4 * MIB);
        now += SECOND;
        progress.update(MIB);
        progress.finish("recover: done");

        String output = text.toString();
        assertThat(output).doesNotContain("\n" + "[").startsWith("\r[......").contains("\r[######################.")
                .contains(" 75% 1.0 MiB left of 4.0 MiB, 3.0 MiB/s, ETA 0:00:01");
        assertThat(output).endsWith("\rrecover: done\n");
        assertThat(output.chars().filter(c -> c == '\n').count()).as("one line in the end").isEqualTo(1);
    }

    @Test
    void etaIsHoursMinutesSecondsRoundedUpAndUnknownBeforeAnythingMoved() {
        assertThat(Progress.eta(0, 0)).isEqualTo("0:00:00");
        assertThat(Progress.eta(100, 0)).isEqualTo("?");
        assertThat(Progress.eta(1, 1000)).isEqualTo("0:00:01");
        assertThat(Progress.eta(3_725_000, 1000)).isEqualTo("1:02:05");
    }
}
