package org.pcache.cache;

import java.util.Locale;
import java.util.Objects;

/**
 * Whether the cache can still make writes durable, and why not if it failed.
 *
 * <p>A cache fails for good, fail-stop like a database after a failed fsync, when a persistence operation of its region
 * fails (an msync, a MAP_SYNC flush), when a memory access of the region faults (a truncated cache file, a full file
 * system under a sparse one, a poisoned page), or when a background job (writeback, GC, a kset timer) stops on
 * something it cannot get past. From then on nothing more is written to the region: writes, flushes and drains fail
 * with {@link CacheFailedException}, reads of what the cache holds keep working where the memory can still be read, and
 * the next open replays the log to the last durable state.
 *
 * <p>Invariant: {@code cause} is set exactly when the phase is {@link Phase#FAILED}.
 *
 * @param phase healthy or failed
 * @param cause what failed, or null
 */
public record CacheHealth(Phase phase, String cause) {

    /** The cache's phase. */
    public enum Phase {
        /** Writes are made durable. */
        HEALTHY,
        /** Stopped making anything durable, for good; restart to replay. */
        FAILED
    }

    /** A healthy cache. */
    public static final CacheHealth HEALTHY = new CacheHealth(Phase.HEALTHY, null);

    public CacheHealth {
        Objects.requireNonNull(phase, "phase");
        if ((phase == Phase.FAILED) != (cause != null)) {
            throw new IllegalArgumentException("a cause goes with FAILED and only with it: " + phase + ", " + cause);
        }
    }

    /** A cache that failed because of {@code cause}. */
    public static CacheHealth failed(String cause) {
        return new CacheHealth(Phase.FAILED, cause);
    }

    /** Whether the cache failed. */
    public boolean failed() {
        return phase == Phase.FAILED;
    }

    /** As status shows it: "healthy", or "failed: " and the cause. */
    @Override
    public String toString() {
        return failed() ? "failed: " + cause : phase.name().toLowerCase(Locale.ROOT);
    }
}
