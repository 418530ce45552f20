package org.pcache.cli;

import picocli.CommandLine;

/** {@code true} or {@code false}, nothing else (dm-pcache's data_crc takes exactly these two words). */
final class StrictBoolean implements CommandLine.ITypeConverter<Boolean> {

    @Override
    public Boolean convert(String text) {
        return switch (text) {
            case "true" -> Boolean.TRUE;
            case "false" -> Boolean.FALSE;
            default -> throw new CommandLine.TypeConversionException("'" + text + "' is not true or false");
        };
    }
}
