package org.pcache.cli;

import org.pcache.cache.CacheMode;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --mode writeback|writethrough|writearound|writeonly|passthrough}, in any case. */
final class CacheModeOption implements ITypeConverter<CacheMode> {

    @Override
    public CacheMode convert(String value) {
        try {
            return CacheMode.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
