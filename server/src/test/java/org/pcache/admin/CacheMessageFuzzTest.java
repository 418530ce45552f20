package org.pcache.admin;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import org.pcache.cache.CacheOptions;

/**
 * Coverage-guided fuzzing of the admin endpoint's message parser: a {@code POST /message} body decoded as the
 * endpoint decodes it (UTF-8, at most {@link AdminServer#MAX_BODY_LENGTH} bytes). Whatever the bytes, the parser
 * either accepts exactly {@code gc_percent N} (keyword in any case, N a decimal number in range, as written) or
 * refuses with an {@link InvalidMessageException} whose message is one printable line (the endpoint answers it as
 * the 400 body and the CLI prints it), and throws nothing else. An accepted message reads back as itself.
 */
class CacheMessageFuzzTest {

    @FuzzTest(maxDuration = "30s")
    void aBodyIsAcceptedAsAMessageOrRefusedWithOneLine(byte[] body) {
        if (body.length > AdminServer.MAX_BODY_LENGTH) {
            return;
        }
        String text = new String(body, StandardCharsets.UTF_8);
        CacheMessage message;
        try {
            message = CacheMessage.parse(text);
        } catch (InvalidMessageException e) {
            assertOneLine(e.getMessage());
            return;
        }
        List<String> words = List.of(text.strip().split("[ \\t]+"));
        assertThat(words).hasSize(2);
        assertThat(words.getFirst().toLowerCase(Locale.ROOT)).isEqualTo(message.kind().keyword());
        if (message.kind() == CacheMessage.Kind.MODE) {
            assertThat(words.get(1).toLowerCase(Locale.ROOT)).isEqualTo(message.mode().label());
        } else {
            assertThat(new BigInteger(words.get(1))).isEqualTo(BigInteger.valueOf(message.value()));
            assertThat(message.value()).isBetween(0, message.kind() == CacheMessage.Kind.GC_PERCENT
                    ? CacheOptions.GC_PERCENT_MAX : 100);
        }
        try {
            assertThat(CacheMessage.parse(message.text())).isEqualTo(message);
            assertThat(CacheMessage.parse(words)).isEqualTo(message);
        } catch (InvalidMessageException e) {
            throw new AssertionError("an accepted message does not read back: " + e.getMessage(), e);
        }
    }

    private static void assertOneLine(String message) {
        assertThat(message).isNotBlank();
        assertThat(message.codePoints().noneMatch(c -> Character.isISOControl(c) || c == '\u2028' || c == '\u2029'))
                .as("one printable line: %s", message.codePoints().mapToObj(c -> String.format("U+%04X", c)).toList())
                .isTrue();
    }
}
