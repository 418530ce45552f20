package org.pcache.bench;

import java.lang.management.ManagementFactory;

import com.sun.management.OperatingSystemMXBean;

/**
 * Operations per second of CPU the whole benchmark JVM used during a measured interval (every thread: the
 * benchmark's, the cache's workers, GC, JIT). On a shared machine the wall-clock score depends on how much of the
 * CPUs the other tenants leave; this ratio depends much less on it, so it is what A/B comparisons of small changes
 * read. With the work CPU-bound and scaling, an idle machine with n CPUs would reach about n times it.
 */
final class CpuMeter {

    private final OperatingSystemMXBean os =
            (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    private long startCpuNanos;
    private long startOps;

    void start(long ops) {
        startOps = ops;
        startCpuNanos = os.getProcessCpuTime();
    }

    /** Prints the interval's operations per CPU second; {@code what} names the operation. */
    void stop(long ops, String what) {
        long cpuNanos = os.getProcessCpuTime() - startCpuNanos;
        long done = ops - startOps;
        System.err.printf("%d %s in %d ms of process CPU: %.0f k %s per CPU second%n", done, what,
                cpuNanos / 1_000_000, done * 1e6 / cpuNanos, what);
    }
}
