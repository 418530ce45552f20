package org.pcache.admin;

import java.util.List;
import java.util.Locale;
import org.pcache.cache.CacheClosedException;
import org.pcache.cache.CacheFailedException;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;

/**
 * A message to a running cache, as {@code dmsetup message DEV 0 ...} sends them to dm-pcache. There is one:
 * {@code gc_percent N}, which sets the segment usage at which GC starts reclaiming and persists it.
 *
 * <p>Parsing follows dm-pcache (dm_pcache_message) with its 2026 fix: the keyword is case-insensitive, exactly two
 * words, and N is checked as a whole decimal number, so {@code 300} is out of range rather than truncated to 8 bits
 * (the merged driver accepted it as 44). Signs, spaces, hex and fractions are not numbers here.
 *
 * @param gcPercent the new gc_percent, 0..{@value CacheOptions#GC_PERCENT_MAX}
 */
public record CacheMessage(int gcPercent) {

    /** The keyword of the only message. */
    public static final String GC_PERCENT = "gc_percent";
    /** Longest value that is parsed as a number; anything longer is out of range anyway. */
    private static final int MAX_DIGITS = 9;
    /** Longest word echoed in a refusal; the rest is cut. */
    private static final int MAX_ECHOED = 64;

    public CacheMessage {
        if (gcPercent < 0 || gcPercent > CacheOptions.GC_PERCENT_MAX) {
            throw new IllegalArgumentException("gc_percent " + gcPercent + " outside 0.."
                    + CacheOptions.GC_PERCENT_MAX);
        }
    }

    /** Parses a message written as one line of words separated by blanks, e.g. {@code gc_percent 50}. */
    public static CacheMessage parse(String text) throws InvalidMessageException {
        String line = text.strip();
        return parse(line.isEmpty() ? List.of() : List.of(line.split("[ \\t]+")));
    }

    /** Parses a message given as its words, e.g. the arguments of {@code pcache message}. */
    public static CacheMessage parse(List<String> words) throws InvalidMessageException {
        if (words.isEmpty()) {
            throw new InvalidMessageException("no message (expected: " + GC_PERCENT + " N, N in 0.."
                    + CacheOptions.GC_PERCENT_MAX + ")");
        }
        String keyword = words.get(0);
        if (!keyword.toLowerCase(Locale.ROOT).equals(GC_PERCENT)) {
            throw new InvalidMessageException("unknown message '" + quoted(keyword) + "' (the only message is "
                    + GC_PERCENT + " N)");
        }
        if (words.size() != 2) {
            throw new InvalidMessageException(GC_PERCENT + " takes exactly one value, got " + (words.size() - 1)
                    + " (expected: " + GC_PERCENT + " N, N in 0.." + CacheOptions.GC_PERCENT_MAX + ")");
        }
        return new CacheMessage(percent(words.get(1)));
    }

    /** Sends the message to {@code cache}: the value is in effect and persisted when this returns. */
    public void apply(Pcache cache) throws CacheClosedException, CacheFailedException {
        cache.setGcPercent(gcPercent);
    }

    /** The message as {@link #parse(String)} reads it. */
    public String text() {
        return GC_PERCENT + " " + gcPercent;
    }

    private static int percent(String value) throws InvalidMessageException {
        if (value.isEmpty() || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidMessageException(GC_PERCENT + " '" + quoted(value) + "' is not a whole number (expected 0.."
                    + CacheOptions.GC_PERCENT_MAX + ")");
        }
        String digits = value.replaceFirst("^0+(?=.)", "");
        if (digits.length() > MAX_DIGITS || Integer.parseInt(digits) > CacheOptions.GC_PERCENT_MAX) {
            throw new InvalidMessageException(GC_PERCENT + " " + quoted(value) + " is out of range (expected 0.."
                    + CacheOptions.GC_PERCENT_MAX + ")");
        }
        return Integer.parseInt(digits);
    }

    /**
     * A word as a refusal echoes it: control and other invisible characters as backslash-u escapes, cut after
     * {@value #MAX_ECHOED} characters, so the refusal stays one printable line (the 400 body, the CLI's error line).
     */
    private static String quoted(String word) {
        StringBuilder out = new StringBuilder();
        word.codePoints().limit(MAX_ECHOED).forEach(c -> {
            if (Character.isISOControl(c) || !Character.isDefined(c) || Character.getType(c) == Character.FORMAT
                    || Character.getType(c) == Character.LINE_SEPARATOR
                    || Character.getType(c) == Character.PARAGRAPH_SEPARATOR) {
                out.append(String.format("\\u%04x", c));
            } else {
                out.appendCodePoint(c);
            }
        });
        return word.codePointCount(0, word.length()) > MAX_ECHOED ? out + "..." : out.toString();
    }
}
