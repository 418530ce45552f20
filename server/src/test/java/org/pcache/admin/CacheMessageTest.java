package org.pcache.admin;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * dm-pcache's message parsing, with the full-integer range check of its 2026 fix (the merged code truncated N to 8
 * bits before the range check, so 300 was accepted as 44).
 */
class CacheMessageTest {

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"gc_percent 0", "gc_percent 90", "GC_PERCENT 50", "Gc_Percent 7", "  gc_percent\t42 \n",
            "gc_percent 007"})
    void acceptsEveryValueFromZeroToNinetyWithTheKeywordInAnyCase(String text) throws Exception {
        CacheMessage message = CacheMessage.parse(text);
        assertThat(message.kind()).isEqualTo(CacheMessage.Kind.GC_PERCENT);
        assertThat(message.value()).isBetween(0, 90);
        assertThat(CacheMessage.parse(message.text())).isEqualTo(message);
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"writeback_low 0", "WRITEBACK_LOW 100", "writeback_high 35", "Writeback_High 100"})
    void acceptsWritebackWatermarksFromZeroToAHundred(String text) throws Exception {
        CacheMessage message = CacheMessage.parse(text);
        assertThat(message.kind()).isIn(CacheMessage.Kind.WRITEBACK_LOW, CacheMessage.Kind.WRITEBACK_HIGH);
        assertThat(CacheMessage.parse(message.text())).isEqualTo(message);
    }

    @ParameterizedTest(name = "''{0}'': {1}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
            "gc_percent 91|91 is out of range (expected 0..90)",
            "gc_percent 300|300 is out of range",
            "gc_percent 256|256 is out of range",
            "gc_percent 4294967346|4294967346 is out of range",
            "gc_percent 99999999999999999999|out of range",
            "gc_percent -1|'-1' is not a whole number",
            "gc_percent +5|'+5' is not a whole number",
            "gc_percent abc|'abc' is not a whole number",
            "gc_percent 0x10|'0x10' is not a whole number",
            "gc_percent 5.0|'5.0' is not a whole number",
            "gc_percent|takes exactly one value, got 0",
            "gc_percent 1 2|takes exactly one value, got 2",
            "gc_percentage 50|unknown message 'gc_percentage'",
            "flush|unknown message 'flush'",
            "writeback_low 101|101 is out of range (expected 0..100)",
            "writeback_high -3|'-3' is not a whole number",
            "writeback_high|takes exactly one value, got 0",
            "mode fast|unknown mode 'fast'",
            "mode|mode takes exactly one value, got 0",
            "mode writeback writethrough|mode takes exactly one value, got 2"})
    void refusesWithOneLineSayingWhat(String text, String reason) {
        assertThatThrownBy(() -> CacheMessage.parse(text)).isInstanceOf(InvalidMessageException.class)
                .hasMessageContaining(reason).satisfies(e -> assertThat(e.getMessage()).doesNotContain("\n"));
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"mode writeback", "MODE WriteThrough", "mode writearound", "mode writeonly",
            " mode\tpassthrough "})
    void acceptsEveryCacheModeInAnyCase(String text) throws Exception {
        CacheMessage message = CacheMessage.parse(text);
        assertThat(message.mode()).isNotNull();
        assertThat(message.text()).isEqualTo("mode " + message.mode().label());
        assertThat(CacheMessage.parse(message.text())).isEqualTo(message);
    }

    @ParameterizedTest(name = "{1}")
    @CsvSource(delimiter = '|', quoteCharacter = '"', value = {
            "gc_\u001cpercent 5|unknown message 'gc_\\u001cpercent'",
            "gc_percent\\n50|unknown message 'gc_percent\\u000a50'",
            "gc_percent 5\\r6|'5\\u000d6' is not a whole number",
            "gc_percent 1\u20282|'1\\u20282' is not a whole number"})
    void echoesControlCharactersEscapedSoTheRefusalStaysOnePrintableLine(String text, String reason) {
        assertThatThrownBy(() -> CacheMessage.parse(text.translateEscapes())).isInstanceOf(
                InvalidMessageException.class).hasMessageContaining(reason)
                .satisfies(e -> assertThat(e.getMessage().codePoints()).noneMatch(c -> Character.isISOControl(c)
                        || c == '\u2028'));
    }

    @Test
    void cutsALongWordItEchoes() {
        assertThatThrownBy(() -> CacheMessage.parse("x".repeat(4000) + " 5"))
                .isInstanceOf(InvalidMessageException.class)
                .hasMessageContaining("unknown message '" + "x".repeat(64) + "...'");
    }

    @Test
    void refusesAnEmptyValueAndAnEmptyMessageAsWords() {
        assertThatThrownBy(() -> CacheMessage.parse(List.of("gc_percent", ""))).isInstanceOf(
                InvalidMessageException.class).hasMessageContaining("'' is not a whole number");
        assertThatThrownBy(() -> CacheMessage.parse(List.of())).isInstanceOf(InvalidMessageException.class)
                .hasMessageContaining("no message");
        assertThatThrownBy(() -> CacheMessage.parse("   ")).isInstanceOf(InvalidMessageException.class)
                .hasMessageContaining("no message");
    }
}
