package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

class ByteSizeTest {

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource({"0, 0", "4096, 4096", "1K, 1024", "1k, 1024", "512M, 536870912", "8G, 8589934592",
            "2T, 2199023255552", "' 16M ', 16777216", "8388607T, 9223370937343148032"})
    void parsesDigitsWithAnOptionalBinarySuffix(String text, long bytes) {
        assertThat(ByteSize.parse(text)).isEqualTo(bytes);
    }

    @ParameterizedTest(name = "''{0}''")
    @ValueSource(strings = {"", " ", "12X", "-1", "1.5G", "G", "0x10", "1 G", "1GB", "8388608T",
            "99999999999999999999"})
    void refusesAnythingElseSayingWhatIsExpected(String text) {
        assertThatThrownBy(() -> ByteSize.parse(text)).isInstanceOf(CommandLine.TypeConversionException.class)
                .hasMessageContaining("'" + text + "' is not a size")
                .hasMessageContaining("K, M, G or T suffix");
    }

    @Test
    void formatsInTheLargestBinaryUnitWithOneDecimal() {
        assertThat(ByteSize.format(0)).isEqualTo("0 B");
        assertThat(ByteSize.format(1023)).isEqualTo("1023 B");
        assertThat(ByteSize.format(1024)).isEqualTo("1.0 KiB");
        assertThat(ByteSize.format(512L << 20)).isEqualTo("512.0 MiB");
        assertThat(ByteSize.format(1L << 30)).isEqualTo("1.0 GiB");
        assertThat(ByteSize.format(3L << 29)).isEqualTo("1.5 GiB");
        assertThat(ByteSize.format(8L << 40)).isEqualTo("8.0 TiB");
        assertThat(ByteSize.format(Long.MAX_VALUE)).isEqualTo("8.0 EiB");
    }
}
