package org.pcache.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;

class ListenAddressTest {

    private final ListenAddress converter = new ListenAddress();

    @Test
    void readsHostAndPortIncludingBracketedIpv6AndPortZero() throws Exception {
        assertThat(converter.convert("127.0.0.1:10809"))
                .isEqualTo(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 10809));
        assertThat(converter.convert("[::1]:10809"))
                .isEqualTo(new InetSocketAddress(InetAddress.getByName("::1"), 10809));
        assertThat(converter.convert("localhost:0").getPort()).isZero();
    }

    @ParameterizedTest(name = "''{0}'': {1}")
    @CsvSource(delimiter = '|', value = {"127.0.0.1|no host or no port", ":10809|no host or no port",
            "127.0.0.1:|no host or no port", "::1:10809|in brackets", "127.0.0.1:http|not a number",
            "127.0.0.1:65536|out of range", "127.0.0.1:-1|out of range",
            "no-such-host.invalid:10809|unknown host"})
    void refusesMalformedAddressesSayingWhy(String text, String reason) {
        assertThatThrownBy(() -> converter.convert(text)).isInstanceOf(CommandLine.TypeConversionException.class)
                .hasMessageContaining("'" + text + "'").hasMessageContaining(reason);
    }
}
