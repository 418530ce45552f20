package org.pcache.nbd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Function;

/**
 * A stripe of asynchronous locks over the export's sectors, serialising the read-modify-writes of partial sectors:
 * a task runs with its sector's stripe held from its start until its future completes, and gets the stripe's
 * sector-sized scratch buffer for the time. Two byte-granular writes into the same sector therefore never both read
 * the old sector and lose one another's bytes.
 *
 * <p>Invariants: a stripe runs one task at a time, the others wait in arrival order; the scratch buffer is used only
 * by the task holding its stripe. Whole-sector writes take no lock: one that overlaps a partial write in flight
 * overlaps it in bytes, and the order of overlapping writes in flight is the client's to choose (proto.md).
 *
 * <p>Threading: {@link #run} may be called from any thread; a queued task runs on the thread that completed the task
 * before it. Tasks that complete at once are run in a loop, not by recursion, so a long queue cannot overflow the
 * stack.
 */
final class SectorLocks {

    static final int STRIPES = 64;

    private final Stripe[] stripes = new Stripe[STRIPES];

    SectorLocks(int sectorSize) {
        Arena arena = Arena.ofAuto();
        for (int i = 0; i < STRIPES; i++) {
            stripes[i] = new Stripe(arena.allocate(sectorSize, sectorSize));
        }
    }

    /** Runs {@code task} with the stripe of {@code sector} held, passing it the stripe's scratch sector buffer. */
    CompletableFuture<Void> run(long sector, Function<MemorySegment, CompletableFuture<Void>> task) {
        Stripe stripe = stripes[(int) Math.floorMod(sector, (long) STRIPES)];
        Waiter waiter = new Waiter(task);
        boolean runNow;
        synchronized (stripe) {
            runNow = !stripe.held;
            if (runNow) {
                stripe.held = true;
            } else {
                stripe.waiting.add(waiter);
            }
        }
        if (runNow) {
            stripe.runFrom(waiter);
        }
        return waiter.done;
    }

    private record Waiter(Function<MemorySegment, CompletableFuture<Void>> task, CompletableFuture<Void> done) {
        Waiter(Function<MemorySegment, CompletableFuture<Void>> task) {
            this(task, new CompletableFuture<>());
        }
    }

    private static final class Stripe {
        private final MemorySegment scratch;
        /** Guarded by this. */
        private final ArrayDeque<Waiter> waiting = new ArrayDeque<>();
        /** Guarded by this. */
        private boolean held;

        Stripe(MemorySegment scratch) {
            this.scratch = scratch;
        }

        /** Runs {@code first} and then the queue, with the stripe held; releases it when the queue is empty. */
        void runFrom(Waiter first) {
            Waiter waiter = first;
            while (waiter != null) {
                CompletableFuture<Void> future;
                try {
                    future = waiter.task().apply(scratch);
                } catch (RuntimeException e) {
                    future = CompletableFuture.failedFuture(e);
                }
                if (!future.isDone()) {
                    Waiter running = waiter;
                    future.whenComplete((ignored, failure) -> {
                        finish(running, failure);
                        runFrom(next());
                    });
                    return;
                }
                finish(waiter, failureOf(future));
                waiter = next();
            }
        }

        private Waiter next() {
            synchronized (this) {
                Waiter next = waiting.poll();
                held = next != null;
                return next;
            }
        }

        private static Throwable failureOf(CompletableFuture<Void> done) {
            try {
                done.join();
                return null;
            } catch (CompletionException e) {
                return e.getCause();
            } catch (CancellationException e) {
                return e;
            }
        }

        private static void finish(Waiter waiter, Throwable failure) {
            if (failure == null) {
                waiter.done().complete(null);
            } else {
                waiter.done().completeExceptionally(failure);
            }
        }
    }
}
