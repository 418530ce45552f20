package org.pcache.admin;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A strict reader of the Prometheus text format (version 0.0.4) for tests: every line is a {@code # HELP} or
 * {@code # TYPE} comment or a sample {@code name{labels} value}; anything else fails the test with the line.
 */
public final class PrometheusText {

    private static final String NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
    private static final String LABEL = "[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"";
    private static final Pattern SAMPLE = Pattern.compile("^(" + NAME + ")(\\{(?:" + LABEL + "(?:," + LABEL
            + ")*,?)?\\})? (\\S+)$");
    private static final Pattern COMMENT = Pattern.compile("^# (HELP " + NAME + "( .*)?|TYPE " + NAME
            + " (counter|gauge|summary|histogram|untyped))$");

    /** Samples by metric name, then by label set as written ("" for none). */
    private final Map<String, Map<String, Double>> samples;

    private PrometheusText(Map<String, Map<String, Double>> samples) {
        this.samples = samples;
    }

    /** Parses {@code text}; throws {@link AssertionError} naming the first line that is not valid. */
    public static PrometheusText parse(String text) {
        Map<String, Map<String, Double>> samples = new LinkedHashMap<>();
        for (String line : text.lines().toList()) {
            if (line.isEmpty()) {
                continue;
            }
            if (line.startsWith("#")) {
                if (!COMMENT.matcher(line).matches()) {
                    throw new AssertionError("not a HELP or TYPE line: " + line);
                }
                continue;
            }
            Matcher sample = SAMPLE.matcher(line);
            if (!sample.matches()) {
                throw new AssertionError("not a sample line 'name{labels} value': " + line);
            }
            samples.computeIfAbsent(sample.group(1), name -> new LinkedHashMap<>())
                    .put(sample.group(2) == null ? "" : sample.group(2), number(line, sample.group(3)));
        }
        return new PrometheusText(samples);
    }

    /** Every metric name with at least one sample. */
    public Set<String> names() {
        return samples.keySet();
    }

    /** The value of {@code name} with exactly {@code labels} as written, e.g. {@code {op="read"}}. */
    public double value(String name, String labels) {
        Double value = samples.getOrDefault(name, Map.of()).get(labels);
        if (value == null) {
            throw new AssertionError("no sample " + name + labels + " among " + samples.get(name));
        }
        return value;
    }

    private static double number(String line, String text) {
        return switch (text) {
            case "NaN" -> Double.NaN;
            case "+Inf" -> Double.POSITIVE_INFINITY;
            case "-Inf" -> Double.NEGATIVE_INFINITY;
            default -> {
                try {
                    yield Double.parseDouble(text);
                } catch (NumberFormatException e) {
                    throw new AssertionError("not a number in: " + line, e);
                }
            }
        };
    }
}
