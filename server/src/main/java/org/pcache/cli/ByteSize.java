package org.pcache.cli;

import java.util.Locale;
import picocli.CommandLine;

/**
 * A byte count as the command line writes it: digits with an optional K, M, G or T suffix in powers of 1024
 * ({@code 512M}, {@code 8G}, {@code 4096}). Also formats sizes back for messages ({@code 1.0 GiB}).
 */
final class ByteSize implements CommandLine.ITypeConverter<Long> {

    private static final String SUFFIXES = "KMGT";
    private static final String EXPECTED = "expected a byte count with an optional K, M, G or T suffix (powers of 1024)"
            + ", e.g. 512M or 8G";

    @Override
    public Long convert(String text) {
        return parse(text);
    }

    /** The number of bytes {@code text} names; {@link CommandLine.TypeConversionException} says why not. */
    static long parse(String text) {
        String trimmed = text.strip();
        if (trimmed.isEmpty()) {
            throw invalid(text, "empty");
        }
        int shift = 0;
        String digits = trimmed;
        char last = Character.toUpperCase(trimmed.charAt(trimmed.length() - 1));
        if (!Character.isDigit(last)) {
            int index = SUFFIXES.indexOf(last);
            if (index < 0) {
                throw invalid(text, "unknown suffix '" + trimmed.charAt(trimmed.length() - 1) + "'");
            }
            shift = 10 * (index + 1);
            digits = trimmed.substring(0, trimmed.length() - 1);
        }
        if (digits.isEmpty() || !digits.chars().allMatch(Character::isDigit)) {
            throw invalid(text, "not a whole non-negative number");
        }
        long value;
        try {
            value = Long.parseLong(digits);
        } catch (NumberFormatException e) {
            throw invalid(text, "too large");
        }
        if (value > (Long.MAX_VALUE >> shift)) {
            throw invalid(text, "too large");
        }
        return value << shift;
    }

    /** {@code bytes} in the largest binary unit that keeps it at least 1, one decimal: {@code 1.0 GiB}. */
    static String format(long bytes) {
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        if (bytes < 1024) {
            return bytes + " B";
        }
        int unit = 0;
        while (unit < units.length - 1 && bytes >= 1L << (10 * (unit + 2))) {
            unit++;
        }
        double scaled = bytes / (double) (1L << (10 * (unit + 1)));
        return String.format(Locale.ROOT, "%.1f %s", scaled, units[unit]);
    }

    private static CommandLine.TypeConversionException invalid(String text, String reason) {
        return new CommandLine.TypeConversionException("'" + text + "' is not a size (" + reason + "; " + EXPECTED
                + ")");
    }
}
