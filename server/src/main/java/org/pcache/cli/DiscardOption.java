package org.pcache.cli;

import java.util.Locale;
import org.pcache.nbd.DiscardPolicy;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --discard passdown|ignore}, in lower case as dm and qemu spell them. */
final class DiscardOption implements ITypeConverter<DiscardPolicy> {

    @Override
    public DiscardPolicy convert(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "passdown" -> DiscardPolicy.PASSDOWN;
            case "ignore" -> DiscardPolicy.IGNORE;
            default -> throw new TypeConversionException("'" + value + "' (expected passdown or ignore)");
        };
    }
}
