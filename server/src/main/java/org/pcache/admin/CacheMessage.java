package org.pcache.admin;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import org.pcache.cache.CacheClosedException;
import org.pcache.cache.CacheFailedException;
import org.pcache.cache.CacheMode;
import org.pcache.cache.CacheOptions;
import org.pcache.cache.Pcache;
import org.pcache.cache.WritebackStatus;

/**
 * A message to a running cache, as {@code dmsetup message DEV 0 ...} sends them to dm-pcache: {@code gc_percent N}
 * sets the segment usage at which GC starts reclaiming and persists it (dm-pcache's one message);
 * {@code writeback_low N} and {@code writeback_high N} set writeback's watermarks, in percent of the data area dirty
 * (pcache's, not persisted); {@code mode MODE} switches the cache mode online and persists it (pcache's).
 *
 * <p>Parsing follows dm-pcache (dm_pcache_message) with its 2026 fix: the keyword is case-insensitive, exactly two
 * words, and N is checked as a whole decimal number, so {@code 300} is out of range rather than truncated to 8 bits
 * (the merged driver accepted it as 44). Signs, spaces, hex and fractions are not numbers here.
 *
 * @param kind  which setting
 * @param value its new value, inside the kind's range; 0 for a mode message
 * @param mode  the new cache mode of a mode message, null for the others
 */
public record CacheMessage(Kind kind, int value, CacheMode mode) {

    /** The messages. */
    public enum Kind {
        /** gc_percent, 0..90. */
        GC_PERCENT("gc_percent", CacheOptions.GC_PERCENT_MAX),
        /** writeback's low watermark, 0..100; at most the high one. */
        WRITEBACK_LOW("writeback_low", 100),
        /** writeback's high watermark, 0..100; at least the low one. */
        WRITEBACK_HIGH("writeback_high", 100),
        /** the cache mode, by name. */
        MODE("mode", 0);

        private final String keyword;
        private final int max;

        Kind(String keyword, int max) {
            this.keyword = keyword;
            this.max = max;
        }

        /** The keyword, as written in a message. */
        public String keyword() {
            return keyword;
        }
    }

    /** The keyword of gc_percent. */
    public static final String GC_PERCENT = Kind.GC_PERCENT.keyword;
    /** Longest value that is parsed as a number; anything longer is out of range anyway. */
    private static final int MAX_DIGITS = 9;
    /** Longest word echoed in a refusal; the rest is cut. */
    private static final int MAX_ECHOED = 64;

    public CacheMessage {
        if ((kind == Kind.MODE) != (mode != null)) {
            throw new IllegalArgumentException(kind.keyword + " message with mode " + mode);
        }
        if (value < 0 || value > kind.max) {
            throw new IllegalArgumentException(kind.keyword + " " + value + " outside 0.." + kind.max);
        }
    }

    /** A numeric message: {@code kind} (not MODE) set to {@code value}. */
    public CacheMessage(Kind kind, int value) {
        this(kind, value, null);
    }

    /** The message that switches the cache to {@code mode}. */
    public static CacheMessage mode(CacheMode mode) {
        return new CacheMessage(Kind.MODE, 0, mode);
    }

    /** Parses a message written as one line of words separated by blanks, e.g. {@code gc_percent 50}. */
    public static CacheMessage parse(String text) throws InvalidMessageException {
        String line = text.strip();
        return parse(line.isEmpty() ? List.of() : List.of(line.split("[ \\t]+")));
    }

    /** Parses a message given as its words, e.g. the arguments of {@code pcache message}. */
    public static CacheMessage parse(List<String> words) throws InvalidMessageException {
        if (words.isEmpty()) {
            throw new InvalidMessageException("no message (expected: " + usage() + ")");
        }
        String keyword = words.get(0).toLowerCase(Locale.ROOT);
        Kind kind = Arrays.stream(Kind.values()).filter(k -> k.keyword.equals(keyword)).findFirst()
                .orElseThrow(() -> new InvalidMessageException("unknown message '" + quoted(words.get(0))
                        + "' (the messages are " + usage() + ")"));
        if (words.size() != 2) {
            throw new InvalidMessageException(kind.keyword + " takes exactly one value, got " + (words.size() - 1)
                    + " (expected: " + usage(kind) + ")");
        }
        if (kind == Kind.MODE) {
            String label = words.get(1).toLowerCase(Locale.ROOT);
            return mode(Arrays.stream(CacheMode.values()).filter(m -> m.label().equals(label)).findFirst()
                    .orElseThrow(() -> new InvalidMessageException("unknown mode '" + quoted(words.get(1))
                            + "' (expected: " + usage(kind) + ")")));
        }
        return new CacheMessage(kind, number(kind, words.get(1)));
    }

    /**
     * Sends the message to {@code cache}: the value is in effect (gc_percent and the mode persisted) when this returns.
     *
     * @throws InvalidMessageException for a low watermark above the high one, or a high one below the low one
     */
    public void apply(Pcache cache) throws CacheClosedException, CacheFailedException, InvalidMessageException {
        switch (kind) {
            case GC_PERCENT -> cache.setGcPercent(value);
            case MODE -> cache.setMode(mode);
            case WRITEBACK_LOW, WRITEBACK_HIGH -> {
                WritebackStatus writeback = cache.status().writeback();
                int low = kind == Kind.WRITEBACK_LOW ? value : writeback.lowPercent();
                int high = kind == Kind.WRITEBACK_HIGH ? value : writeback.highPercent();
                if (low > high) {
                    throw new InvalidMessageException(text() + " would put writeback_low " + low
                            + " above writeback_high " + high + " (expected low <= high)");
                }
                cache.setWritebackWatermarks(low, high);
            }
        }
    }

    /** The message as {@link #parse(String)} reads it. */
    public String text() {
        return kind.keyword + " " + (mode != null ? mode.label() : Integer.toString(value));
    }

    private static String usage() {
        return Arrays.stream(Kind.values()).map(CacheMessage::usage).collect(Collectors.joining(", "));
    }

    private static String usage(Kind kind) {
        if (kind == Kind.MODE) {
            return kind.keyword + " " + Arrays.stream(CacheMode.values()).map(CacheMode::label)
                    .collect(Collectors.joining("|"));
        }
        return kind.keyword + " N (0.." + kind.max + ")";
    }

    private static int number(Kind kind, String value) throws InvalidMessageException {
        if (value.isEmpty() || !value.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new InvalidMessageException(kind.keyword + " '" + quoted(value) + "' is not a whole number (expected 0.."
                    + kind.max + ")");
        }
        String digits = value.replaceFirst("^0+(?=.)", "");
        if (digits.length() > MAX_DIGITS || Integer.parseInt(digits) > kind.max) {
            throw new InvalidMessageException(kind.keyword + " " + quoted(value) + " is out of range (expected 0.."
                    + kind.max + ")");
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
