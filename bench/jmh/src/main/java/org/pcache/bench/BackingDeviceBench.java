package org.pcache.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.pcache.backing.BackingCompletion;
import org.pcache.backing.BackingDevice;
import org.pcache.backing.BackingIoException;
import org.pcache.backing.BackingOp;
import org.pcache.backing.BackingRequest;
import org.pcache.backing.FileEngine;
import org.pcache.backing.MemoryRequest;

/**
 * 4 KiB random writes and reads on a 1 GiB file on the disk (buffered, so the page cache serves them): through
 * {@link BackingDevice} on a {@link FileEngine} (queued submit, 16 I/O threads) against plain positional
 * {@link FileChannel} calls on the caller's thread. The "direct" variants use {@code submitDirect}, which skips the
 * submit worker (writeback's path).
 *
 * <p>"qd1" is one thread with one operation in flight; "qd32" is 32 threads with one each (the same shape for both
 * paths); "window32" is one thread keeping 32 device requests in flight, the way the cache submits read misses and
 * writeback. The file lives in {@code PCACHE_BENCH_DISK} (default: the system temp directory); it is laid out with
 * {@link #fillChunk}-sized writes of random data and synced at setup, and deleted at the end.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 3)
@Fork(1)
public class BackingDeviceBench {

    static final long FILE_SIZE = 1L << 30;
    static final int BLOCK = 4096;
    static final int WINDOW = 32;

    /**
     * Size of the writes that lay out the file. It decides the page-cache folio size: after a 1 MiB layout every 4 KiB
     * write dirties a large folio and buffered random writes run several times slower (see docs/performance.md).
     */
    @Param({"4096"})
    public int fillChunk;

    private Path file;
    private FileChannel channel;
    private BackingDevice device;

    @Setup(Level.Trial)
    public void createFile() throws IOException {
        Path dir = Path.of(System.getenv().getOrDefault("PCACHE_BENCH_DISK", System.getProperty("java.io.tmpdir")));
        file = Files.createTempFile(dir, "pcache-backing-bench-", ".img");
        channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
        ByteBuffer chunk = ByteBuffer.allocateDirect(fillChunk);
        byte[] random = new byte[chunk.capacity()];
        new SplittableRandom(1).nextBytes(random);
        chunk.put(random);
        for (long offset = 0; offset < FILE_SIZE; offset += chunk.capacity()) {
            chunk.clear();
            while (chunk.hasRemaining()) {
                channel.write(chunk, offset + chunk.position());
            }
        }
        // Start clean: without this, writeback of the fill throttles the first write benchmarks.
        channel.force(true);
        device = BackingDevice.start(FileEngine.open(file, FileEngine.Options.DEFAULT));
    }

    @TearDown(Level.Trial)
    public void deleteFile() throws IOException {
        device.stop();
        channel.close();
        Files.delete(file);
    }

    /** One benchmark thread's buffers, random offsets and completion waiter. */
    @State(Scope.Thread)
    public static class Slot implements BackingCompletion {
        private final Arena arena = Arena.ofShared();
        final MemorySegment[] blocks = new MemorySegment[WINDOW];
        final ByteBuffer[] buffers = new ByteBuffer[WINDOW];
        private final SplittableRandom random = new SplittableRandom();
        private final AtomicInteger pending = new AtomicInteger();
        private volatile BackingIoException error;
        private Thread owner;

        @Setup(Level.Trial)
        public void allocate() {
            owner = Thread.currentThread();
            for (int i = 0; i < WINDOW; i++) {
                blocks[i] = arena.allocate(BLOCK, BLOCK);
                blocks[i].fill((byte) i);
                buffers[i] = blocks[i].asByteBuffer();
            }
        }

        @TearDown(Level.Trial)
        public void free() {
            arena.close();
        }

        long randomOffset() {
            return random.nextLong(FILE_SIZE / BLOCK) * BLOCK;
        }

        void expect(int requests) {
            pending.set(requests);
        }

        @Override
        public void complete(BackingRequest request, BackingIoException failure) {
            if (failure != null) {
                error = failure;
            }
            if (pending.decrementAndGet() == 0) {
                LockSupport.unpark(owner);
            }
        }

        void await() {
            while (pending.get() != 0) {
                LockSupport.park(this);
            }
            if (error != null) {
                throw new IllegalStateException(error);
            }
        }
    }

    @Benchmark
    @Threads(1)
    public int rawWriteQd1(Slot slot) throws IOException {
        return rawWrite(slot);
    }

    @Benchmark
    @Threads(32)
    public int rawWriteQd32(Slot slot) throws IOException {
        return rawWrite(slot);
    }

    @Benchmark
    @Threads(1)
    public int rawReadQd1(Slot slot) throws IOException {
        return rawRead(slot);
    }

    @Benchmark
    @Threads(32)
    public int rawReadQd32(Slot slot) throws IOException {
        return rawRead(slot);
    }

    @Benchmark
    @Threads(1)
    public void deviceWriteQd1(Slot slot) {
        deviceRun(slot, BackingOp.WRITE, 1);
    }

    @Benchmark
    @Threads(32)
    public void deviceWriteQd32(Slot slot) {
        deviceRun(slot, BackingOp.WRITE, 1);
    }

    @Benchmark
    @Threads(1)
    @OperationsPerInvocation(WINDOW)
    public void deviceWriteWindow32(Slot slot) {
        deviceRun(slot, BackingOp.WRITE, WINDOW);
    }

    @Benchmark
    @Threads(1)
    public void deviceReadQd1(Slot slot) {
        deviceRun(slot, BackingOp.READ, 1);
    }

    @Benchmark
    @Threads(32)
    public void deviceReadQd32(Slot slot) {
        deviceRun(slot, BackingOp.READ, 1);
    }

    @Benchmark
    @Threads(1)
    @OperationsPerInvocation(WINDOW)
    public void deviceReadWindow32(Slot slot) {
        deviceRun(slot, BackingOp.READ, WINDOW);
    }

    @Benchmark
    @Threads(1)
    public void deviceDirectWriteQd1(Slot slot) {
        slot.expect(1);
        device.submitDirect(new MemoryRequest(BackingOp.WRITE, slot.blocks[0], slot.randomOffset(), slot));
        slot.await();
    }

    @Benchmark
    @Threads(1)
    public void deviceDirectReadQd1(Slot slot) {
        slot.expect(1);
        device.submitDirect(new MemoryRequest(BackingOp.READ, slot.blocks[0], slot.randomOffset(), slot));
        slot.await();
    }

    private int rawWrite(Slot slot) throws IOException {
        ByteBuffer buffer = slot.buffers[0].clear();
        return channel.write(buffer, slot.randomOffset());
    }

    private int rawRead(Slot slot) throws IOException {
        ByteBuffer buffer = slot.buffers[0].clear();
        return channel.read(buffer, slot.randomOffset());
    }

    private void deviceRun(Slot slot, BackingOp op, int inFlight) {
        slot.expect(inFlight);
        for (int i = 0; i < inFlight; i++) {
            device.submit(new MemoryRequest(op, slot.blocks[i], slot.randomOffset(), slot));
        }
        slot.await();
    }
}
