package org.pcache.pmem;

import java.io.IOException;
import java.nio.file.Path;

/** An existing region file has another size than the one requested; it is left untouched. */
public class RegionSizeMismatchException extends IOException {

    private static final long serialVersionUID = 1L;

    private final long requested;
    private final long existing;

    public RegionSizeMismatchException(Path path, long requested, long existing) {
        super("region file " + path + " exists with " + existing + " bytes, but " + requested
                + " were requested; pass its size or remove it to create a new one");
        this.requested = requested;
        this.existing = existing;
    }

    public long requested() {
        return requested;
    }

    public long existing() {
        return existing;
    }
}
