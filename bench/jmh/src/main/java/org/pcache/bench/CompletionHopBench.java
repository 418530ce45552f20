package org.pcache.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingOp;
import org.pcache.backing.IoEngine;
import org.pcache.backing.MemoryEngine;
import org.pcache.backing.MemoryRequest;

/**
 * The completion hop of writeback's shape of work: one thread submits a kset's worth ({@link #KSET}) of 4 KiB writes
 * with {@code BackingDevice.submitDirect} and waits until all have completed, as {@code KsetWriteback} does.
 * {@code oneByOne} submits each request on its own; {@code batch} hands the list to {@code submitDirect(List)}, whose
 * completions reach the completion worker in one hand-over. The engine completes every request on the submitting
 * thread: {@code discard} keeps nothing (the hop alone), {@code memory} copies the 4 KiB (a {@code MemoryEngine}, the
 * cache-core benchmarks' backing device). Prints requests per second of process CPU ({@link CpuMeter}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(1)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class CompletionHopBench {

    static final int KSET = 128;
    static final int BLOCK = 4096;
    static final long DEVICE_BYTES = 64L << 20;

    @Param({"discard", "memory"})
    public String engine;

    private Arena arena;
    private MemorySegment source;
    private BackingDevice device;
    private final CpuMeter cpu = new CpuMeter();
    private long requests;
    private long nextOffset;

    @Setup(Level.Trial)
    public void start() {
        arena = Arena.ofShared();
        source = arena.allocate((long) KSET * BLOCK, 4096);
        IoEngine io = engine.equals("memory") ? new MemoryEngine(DEVICE_BYTES) : new DiscardEngine(DEVICE_BYTES);
        device = BackingDevice.start(io);
    }

    @TearDown(Level.Trial)
    public void stop() {
        device.stop();
        arena.close();
    }

    @Setup(Level.Iteration)
    public void startMeter() {
        cpu.start(requests);
    }

    @TearDown(Level.Iteration)
    public void stopMeter() {
        cpu.stop(requests, "requests");
    }

    @Benchmark
    @OperationsPerInvocation(KSET)
    public void oneByOne() throws InterruptedException {
        CountDownLatch done = new CountDownLatch(KSET);
        BackingCompletion completion = (request, error) -> done.countDown();
        for (int i = 0; i < KSET; i++) {
            device.submitDirect(request(i, completion));
        }
        await(done);
    }

    @Benchmark
    @OperationsPerInvocation(KSET)
    public void batch() throws InterruptedException {
        CountDownLatch done = new CountDownLatch(KSET);
        BackingCompletion completion = (request, error) -> done.countDown();
        List<MemoryRequest> batch = new ArrayList<>(KSET);
        for (int i = 0; i < KSET; i++) {
            batch.add(request(i, completion));
        }
        device.submitDirect(batch);
        await(done);
    }

    private MemoryRequest request(int i, BackingCompletion completion) {
        long offset = nextOffset;
        nextOffset = (nextOffset + BLOCK) % DEVICE_BYTES;
        return new MemoryRequest(BackingOp.WRITE, source.asSlice((long) i * BLOCK, BLOCK), offset, completion);
    }

    private void await(CountDownLatch done) throws InterruptedException {
        if (!done.await(10, TimeUnit.SECONDS)) {
            throw new IllegalStateException("requests did not complete");
        }
        requests += KSET;
    }
}
