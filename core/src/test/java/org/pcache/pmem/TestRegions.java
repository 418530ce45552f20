package org.pcache.pmem;

import java.io.IOException;
import java.nio.file.Path;

/**
 * The regions the cache tests run on, in the persistence mode the system property {@value #PROPERTY} names: {@code msync}
 * (the default: a shared mapping, and the simulator with durability at a drain) or {@code map-sync} (a mapping in
 * {@link PersistenceMode#MAP_SYNC} mode, whose flushes are durable on return, and the simulator durable on flush). The
 * second surefire execution of core runs the cache tests with {@code map-sync}, so the MAP_SYNC code path runs
 * through the whole cache suite on machines without DAX.
 */
public final class TestRegions {

    /** The system property that selects the persistence mode. */
    public static final String PROPERTY = "pcache.test.persistence";

    private TestRegions() {
    }

    /** The persistence mode the tests run in: {@link PersistenceMode#MSYNC} or {@link PersistenceMode#MAP_SYNC}. */
    public static PersistenceMode mode() {
        String value = System.getProperty(PROPERTY, "msync");
        return switch (value) {
            case "msync" -> PersistenceMode.MSYNC;
            case "map-sync" -> PersistenceMode.MAP_SYNC;
            default -> throw new IllegalArgumentException(PROPERTY + " must be msync or map-sync, got " + value);
        };
    }

    /** A memory-mapped region on {@code file} (created sparse when missing), in {@link #mode()}. */
    public static MappedPmemRegion mapped(Path file, long size) throws IOException {
        return mode() == PersistenceMode.MAP_SYNC ? MappedPmemRegion.openAsMapSync(file, size)
                : MappedPmemRegion.open(file, size);
    }

    /** A zero-filled power-cut simulator of {@code size} bytes, durable on flush in MAP_SYNC mode. */
    public static CrashSimPmemRegion crashSim(long size) {
        return new CrashSimPmemRegion(size, mode() == PersistenceMode.MAP_SYNC);
    }
}
