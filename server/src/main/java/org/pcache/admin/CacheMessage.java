package org.pcache.admin;

import java.util.List;
import java.util.Locale;
import org.pcache.cache.CacheClosedException;
import org.pcache.cache.CacheFailedException;
import org.pcache.cache.CacheMode;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;

/**
 * A message to a running cache, as {@code dmsetup message DEV 0 ...} sends them to dm-pcache: {@code gc_percent N},
 * which sets the segment usage at which GC starts reclaiming and persists it (dm-pcache's one message), and pcache's
 * {@code mode MODE}, which switches the cache mode online and persists it.
 *
 * <p>Parsing follows dm-pcache (dm_pcache_message) with its 2026 fix: the keyword is case-insensitive, exactly two
 * words, and N is checked as a whole decimal number, so {@code 300} is out of range rather than truncated to 8 bits
 * (the merged driver accepted it as 44). Signs, spaces, hex and fractions are not numbers here.
 *
 * @param gcPercent the new gc_percent, 0..{@value CacheOptions#GC_PERCENT_MAX}; unused (-1) for a mode message
 * @param mode      the new cache mode, or null for a gc_percent message
 */
public record CacheMessage(int gcPercent, CacheMode mode) {

    /** The keyword of dm-pcache's message. */
    public static final String GC_PERCENT = "gc_percent";
    /** The keyword of the mode message. */
    public static final String MODE = "mode";
    private static final String EXPECTED = "expected: " + GC_PERCENT + " N, N in 0.." + CacheOptions.GC_PERCENT_MAX
            + ", or " + MODE + " writeback|writethrough|writearound|writeonly|passthrough";
    /** Longest value that is parsed as a number; anything longer is out of range anyway. */
    private static final int MAX_DIGITS = 9;

    public CacheMessage {
        if (mode == null && (gcPercent < 0 || gcPercent > CacheOptions.GC_PERCENT_MAX)) {
            throw new IllegalArgumentException("gc_percent " + gcPercent + " outside 0.."
                    + CacheOptions.GC_PERCENT_MAX);
        }
    }

    /** The message {@code gc_percent gcPercent}. */
    public CacheMessage(int gcPercent) {
        this(gcPercent, null);
    }

    /** The message {@code mode mode}. */
    public static CacheMessage mode(CacheMode mode) {
        return new CacheMessage(-1, java.util.Objects.requireNonNull(mode, "mode"));
    }

    /** Parses a message written as one line of words separated by blanks, e.g. {@code gc_percent 50}. */
    public static CacheMessage parse(String text) throws InvalidMessageException {
        String line = text.strip();
        return parse(line.isEmpty() ? List.of() : List.of(line.split("[ \\t]+")));
    }

    /** Parses a message given as its words, e.g. the arguments of {@code pcache message}. */
    public static CacheMessage parse(List<String> words) throws InvalidMessageException {
        if (words.isEmpty()) {
            throw new InvalidMessageException("no message (" + EXPECTED + ")");
        }
        String keyword = words.get(0);
        if (keyword.toLowerCase(Locale.ROOT).equals(MODE)) {
            if (words.size() != 2) {
                throw new InvalidMessageException(MODE + " takes exactly one value, got " + (words.size() - 1) + " ("
                        + EXPECTED + ")");
            }
            try {
                return mode(CacheMode.parse(words.get(1)));
            } catch (IllegalArgumentException e) {
                throw new InvalidMessageException(e.getMessage());
            }
        }
        if (!keyword.toLowerCase(Locale.ROOT).equals(GC_PERCENT)) {
            throw new InvalidMessageException("unknown message '" + keyword + "' (" + EXPECTED + ")");
        }
        if (words.size() != 2) {
            throw new InvalidMessageException(GC_PERCENT + " takes exactly one value, got " + (words.size() - 1)
                    + " (expected: " + GC_PERCENT + " N, N in 0.." + CacheOptions.GC_PERCENT_MAX + ")");
        }
        return new CacheMessage(percent(words.get(1)));
    }

    /** Sends the message to {@code cache}: the value is in effect and persisted when this returns. */
    public void apply(Pcache cache) throws CacheClosedException, CacheFailedException {
        if (mode != null) {
            cache.setMode(mode);
        } else {
            cache.setGcPercent(gcPercent);
        }
    }

    /** The message as {@link #parse(String)} reads it. */
    public String text() {
        return mode != null ? MODE + " " + mode.label() : GC_PERCENT + " " + gcPercent;
    }

    private static int percent(String value) throws InvalidMessageException {
        if (value.isEmpty() || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidMessageException(GC_PERCENT + " '" + value + "' is not a whole number (expected 0.."
                    + CacheOptions.GC_PERCENT_MAX + ")");
        }
        String digits = value.replaceFirst("^0+(?=.)", "");
        if (digits.length() > MAX_DIGITS || Integer.parseInt(digits) > CacheOptions.GC_PERCENT_MAX) {
            throw new InvalidMessageException(GC_PERCENT + " " + value + " is out of range (expected 0.."
                    + CacheOptions.GC_PERCENT_MAX + ")");
        }
        return Integer.parseInt(digits);
    }
}
