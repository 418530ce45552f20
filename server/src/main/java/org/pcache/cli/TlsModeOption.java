package org.pcache.cli;

import java.util.Locale;
import org.pcache.nbd.TlsMode;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --tls off|on|require}, in lower case as nbdkit spells them. */
final class TlsModeOption implements ITypeConverter<TlsMode> {

    @Override
    public TlsMode convert(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "off" -> TlsMode.OFF;
            case "on" -> TlsMode.ON;
            case "require" -> TlsMode.REQUIRE;
            default -> throw new TypeConversionException("'" + value + "' (expected off, on or require)");
        };
    }
}
