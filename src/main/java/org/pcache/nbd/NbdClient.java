package org.pcache.nbd;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD client: fixed newstyle handshake with NBD_OPT_GO and structured replies, then READ, WRITE (with or
 * without FUA), FLUSH, TRIM and WRITE_ZEROES, up to {@link #MAX_IN_FLIGHT} requests in flight, each
 * identified by its handle. One reader thread ({@code pcache-nbd-client}) decodes replies and completes the
 * futures, so callbacks run on it.
 *
 * <pre>{@code
 * try (NbdClient client = NbdClient.connect(NbdUri.parse("nbd://127.0.0.1:10809/disk"))) {
 *     client.write(0, buffer, Durability.FUA).join();
 * }
 * }</pre>
 *
 * <p>A failed request completes its future with {@link NbdErrorException}; a broken connection fails every
 * request in flight and every later one with an {@link IOException} naming the cause.
 *
 * <p>Threading: request methods may be called from any thread; they block only while the request is being
 * sent and while {@link #MAX_IN_FLIGHT} requests are already in flight. The send path is guarded by
 * {@code sendLock}, the handle table by {@code table}.
 */
public final class NbdClient implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(NbdClient.class);

    public static final int MAX_IN_FLIGHT = 64;
    private static final int INPUT_CAPACITY = 64 * 1024;
    private static final long CLOSE_TIMEOUT_SECONDS = 30;
    /** Empty and never written: shared by every request without payload. */
    private static final ByteBuffer NO_PAYLOAD = ByteBuffer.allocate(0);

    private final NbdUri uri;
    private final SocketChannel channel;
    private final long size;
    private final int transmissionFlags;
    private final boolean structuredReplies;
    private final int minimumBlockSize;
    private final int preferredBlockSize;
    private final int maximumBlockSize;
    private final Semaphore slots = new Semaphore(MAX_IN_FLIGHT);
    /** In-flight requests by slot, free slots and per-slot handle generations; guarded by itself. */
    private final Pending[] table = new Pending[MAX_IN_FLIGHT];
    private final int[] freeSlots = new int[MAX_IN_FLIGHT];
    private final int[] generations = new int[MAX_IN_FLIGHT];
    private int freeCount = MAX_IN_FLIGHT;
    private final ReentrantLock sendLock = new ReentrantLock();
    /** Request header staging; guarded by sendLock. */
    private final ByteBuffer header = ByteBuffer.allocateDirect(NbdProtocol.REQUEST_HEADER_LENGTH);
    private final ByteBuffer[] vector = new ByteBuffer[2];
    /** Owned by the reader thread. */
    private final ByteBuffer in = ByteBuffer.allocateDirect(INPUT_CAPACITY).flip();
    private final Thread reader;
    private volatile IOException failure;
    private volatile boolean closing;

    /** One request waiting for its reply. */
    private static final class Pending {
        final NbdCommand command;
        final long offset;
        final long length;
        final MemorySegment dst;
        final CompletableFuture<Void> future = new CompletableFuture<>();
        long handle;
        long received;
        NbdErrorException error;

        Pending(NbdCommand command, long offset, long length, MemorySegment dst) {
            this.command = command;
            this.offset = offset;
            this.length = length;
            this.dst = dst;
        }
    }

    private NbdClient(NbdUri uri, SocketChannel channel, ClientHandshake handshake) {
        this.uri = uri;
        this.channel = channel;
        this.size = handshake.size();
        this.transmissionFlags = handshake.transmissionFlags();
        this.structuredReplies = handshake.structuredReplies();
        this.minimumBlockSize = handshake.minimumBlockSize();
        this.preferredBlockSize = handshake.preferredBlockSize();
        this.maximumBlockSize = handshake.maximumBlockSize();
        for (int i = 0; i < MAX_IN_FLIGHT; i++) {
            freeSlots[i] = i;
        }
        this.reader = Thread.ofPlatform().name("pcache-nbd-client").unstarted(this::readReplies);
    }

    /** Connects, negotiates, and starts the reader thread. */
    public static NbdClient connect(NbdUri uri) throws IOException {
        SocketChannel channel = open(uri);
        try {
            ByteBuffer in = ByteBuffer.allocate(ClientHandshake.MIN_INPUT_CAPACITY).flip();
            ByteBuffer out = ByteBuffer.allocate(ClientHandshake.MAX_OUTPUT_BYTES);
            ClientHandshake handshake = new ClientHandshake(uri.exportName());
            while (handshake.decode(in, out) != ClientHandshake.State.TRANSMISSION) {
                out.flip();
                while (out.hasRemaining()) {
                    channel.write(out);
                }
                out.clear();
                in.compact();
                int read = channel.read(in);
                in.flip();
                if (read < 0) {
                    throw new NbdProtocolException("server closed the connection during the handshake");
                }
            }
            NbdClient client = new NbdClient(uri, channel, handshake);
            client.reader.start();
            LOG.debug("nbd client connected uri={} size={} flags=0x{}", uri, client.size,
                    Integer.toHexString(client.transmissionFlags));
            return client;
        } catch (IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    private static SocketChannel open(NbdUri uri) throws IOException {
        SocketAddress address = uri.address();
        SocketChannel channel;
        if (address instanceof UnixDomainSocketAddress) {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } else {
            InetSocketAddress inet = (InetSocketAddress) address;
            address = new InetSocketAddress(inet.getHostString(), inet.getPort());
            channel = SocketChannel.open();
        }
        try {
            channel.connect(address);
            if (address instanceof InetSocketAddress) {
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            }
            return channel;
        } catch (IOException e) {
            channel.close();
            String reason = e instanceof ConnectException ? "connection refused or no server listening"
                    : e.toString();
            throw new IOException("cannot connect to NBD server " + uri + ": " + reason, e);
        }
    }

    public NbdUri uri() {
        return uri;
    }

    public long size() {
        return size;
    }

    /** The transmission flags the server sent (NBD_FLAG_*). */
    public int transmissionFlags() {
        return transmissionFlags;
    }

    public boolean has(int transmissionFlag) {
        return (transmissionFlags & transmissionFlag) != 0;
    }

    public boolean structuredReplies() {
        return structuredReplies;
    }

    /** Required alignment of offsets and lengths; 1 when the server advertised none. */
    public int minimumBlockSize() {
        return minimumBlockSize;
    }

    public int preferredBlockSize() {
        return preferredBlockSize;
    }

    /** Longest READ or WRITE the server accepts (at most 32 MiB). */
    public int maximumBlockSize() {
        return maximumBlockSize;
    }

    public CompletableFuture<Void> read(long offset, MemorySegment dst) {
        checkPayload(offset, dst.byteSize());
        return submit(NbdCommand.READ, 0, offset, dst.byteSize(), null, dst);
    }

    /** Writes {@code src}; it must not change until the future completes. */
    public CompletableFuture<Void> write(long offset, MemorySegment src, Durability durability) {
        checkPayload(offset, src.byteSize());
        return submit(NbdCommand.WRITE, fua(durability), offset, src.byteSize(), src, null);
    }

    public CompletableFuture<Void> flush() {
        return submit(NbdCommand.FLUSH, 0, 0, 0, null, null);
    }

    public CompletableFuture<Void> trim(long offset, long length, Durability durability) {
        checkRange(offset, length);
        return submit(NbdCommand.TRIM, fua(durability), offset, length, null, null);
    }

    /** Zeroes the range; the server may leave a hole (no NO_HOLE flag). */
    public CompletableFuture<Void> writeZeroes(long offset, long length, Durability durability) {
        checkRange(offset, length);
        return submit(NbdCommand.WRITE_ZEROES, fua(durability), offset, length, null, null);
    }

    /**
     * Waits for the requests in flight (up to 30 s), sends NBD_CMD_DISC, and closes the connection; requests
     * still unanswered then fail.
     */
    @Override
    public void close() throws IOException {
        if (closing) {
            return;
        }
        closing = true;
        try {
            if (failure == null && slots.tryAcquire(MAX_IN_FLIGHT, CLOSE_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                disconnect();
                slots.release(MAX_IN_FLIGHT);
            }
            if (!reader.join(Duration.ofSeconds(CLOSE_TIMEOUT_SECONDS))) {
                channel.close();
                reader.join();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            channel.close();
        }
    }

    /** NBD_CMD_DISC, then end of stream, which the server answers by closing: the reader sees it and exits. */
    private void disconnect() {
        try {
            send(NbdCommand.DISC.type(), 0, 0, 0, 0, null);
            channel.shutdownOutput();
        } catch (IOException e) {
            LOG.debug("nbd client {}: disconnect failed: {}", uri, e.toString());
            try {
                channel.close();
            } catch (IOException closeFailure) {
                LOG.debug("nbd client {}: close: {}", uri, closeFailure.toString());
            }
        }
    }

    private static int fua(Durability durability) {
        return durability == Durability.FUA ? NbdProtocol.CMD_FLAG_FUA : 0;
    }

    private void checkPayload(long offset, long length) {
        checkRange(offset, length);
        if (length > maximumBlockSize) {
            throw new IllegalArgumentException("request of " + length + " bytes (expected <= " + maximumBlockSize
                    + "); split it");
        }
    }

    private void checkRange(long offset, long length) {
        if (offset < 0 || length <= 0 || length > 0xffff_ffffL || offset > size - length) {
            throw new IllegalArgumentException("range [" + offset + ", +" + length + ") outside export of " + size
                    + " bytes");
        }
    }

    private CompletableFuture<Void> submit(NbdCommand command, int flags, long offset, long length,
                                           MemorySegment src, MemorySegment dst) {
        Pending pending = new Pending(command, offset, length, dst);
        IOException broken = failure;
        if (broken != null || closing) {
            pending.future.completeExceptionally(broken != null ? broken : closedException());
            return pending.future;
        }
        try {
            slots.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            pending.future.completeExceptionally(e);
            return pending.future;
        }
        if (failure != null || closing) {
            slots.release();
            pending.future.completeExceptionally(failure != null ? failure : closedException());
            return pending.future;
        }
        register(pending);
        try {
            send(command.type(), flags, pending.handle, offset, length, src);
        } catch (IOException e) {
            fail(new IOException("NBD connection to " + uri + " broke while sending " + command + ": " + e, e));
        }
        return pending.future;
    }

    private void send(int type, int flags, long handle, long offset, long length, MemorySegment payload)
            throws IOException {
        sendLock.lock();
        try {
            header.clear();
            header.putInt(NbdProtocol.REQUEST_MAGIC).putShort((short) flags).putShort((short) type)
                    .putLong(handle).putLong(offset).putInt((int) length).flip();
            vector[0] = header;
            vector[1] = payload == null ? NO_PAYLOAD : payload.asByteBuffer();
            long remaining = header.remaining() + vector[1].remaining();
            while (remaining > 0) {
                remaining -= channel.write(vector);
            }
        } finally {
            vector[1] = null;
            sendLock.unlock();
        }
    }

    private void register(Pending pending) {
        synchronized (table) {
            int slot = freeSlots[--freeCount];
            pending.handle = ((long) ++generations[slot] << 32) | slot;
            table[slot] = pending;
        }
    }

    private Pending lookup(long handle) throws NbdProtocolException {
        int slot = (int) handle;
        synchronized (table) {
            Pending pending = slot >= 0 && slot < MAX_IN_FLIGHT ? table[slot] : null;
            if (pending == null || pending.handle != handle) {
                throw new NbdProtocolException("reply for unknown handle 0x" + Long.toHexString(handle));
            }
            return pending;
        }
    }

    private void finish(Pending pending, IOException error) {
        int slot = (int) pending.handle;
        synchronized (table) {
            table[slot] = null;
            freeSlots[freeCount++] = slot;
        }
        slots.release();
        if (error == null) {
            pending.future.complete(null);
        } else {
            pending.future.completeExceptionally(error);
        }
    }

    /** Body of the reader thread. */
    private void readReplies() {
        try {
            while (true) {
                if (!fill(Integer.BYTES)) {
                    if (!closing) {
                        fail(new IOException("NBD server " + uri + " closed the connection"));
                    }
                    return;
                }
                int magic = in.getInt();
                if (magic == NbdProtocol.SIMPLE_REPLY_MAGIC) {
                    readSimpleReply();
                } else if (magic == NbdProtocol.STRUCTURED_REPLY_MAGIC) {
                    readChunk();
                } else {
                    throw new NbdProtocolException("reply magic 0x" + Integer.toHexString(magic));
                }
            }
        } catch (IOException e) {
            fail(closing ? closedException() : new IOException("NBD connection to " + uri + " failed: "
                    + e.getMessage(), e));
        } finally {
            fail(closedException());
        }
    }

    private void readSimpleReply() throws IOException {
        require(NbdProtocol.SIMPLE_REPLY_LENGTH - Integer.BYTES);
        int code = in.getInt();
        Pending pending = lookup(in.getLong());
        if (code != 0) {
            finish(pending, new NbdErrorException(NbdError.decode(code), describe(pending)));
            return;
        }
        if (pending.command == NbdCommand.READ) {
            if (structuredReplies) {
                throw new NbdProtocolException("simple reply to a READ after structured replies were negotiated");
            }
            readInto(pending.dst);
        }
        finish(pending, null);
    }

    private void readChunk() throws IOException {
        require(NbdProtocol.CHUNK_HEADER_LENGTH - Integer.BYTES);
        ReplyDecoder.Chunk chunk = ReplyDecoder.decodeChunkHeader(in);
        Pending pending = lookup(chunk.handle());
        if (chunk.isError()) {
            require((int) chunk.length());
            ByteBuffer payload = in.slice(in.position(), (int) chunk.length());
            in.position(in.position() + (int) chunk.length());
            ReplyDecoder.ErrorChunk error = ReplyDecoder.decodeError(chunk, payload);
            if (pending.error == null) {
                pending.error = new NbdErrorException(error.error(), describe(pending)
                        + (error.message().isEmpty() ? "" : ": " + error.message()));
            }
        } else {
            ReplyDecoder.checkChunkLength(chunk, pending.length);
            if (chunk.type() != ReplyChunk.NONE && pending.command != NbdCommand.READ) {
                throw new NbdProtocolException(chunk.type() + " chunk in the reply to " + pending.command);
            }
            switch (chunk.type()) {
                case OFFSET_DATA -> {
                    require(Long.BYTES);
                    long dataLength = chunk.length() - Long.BYTES;
                    long at = contentOffset(pending, in.getLong(), dataLength);
                    readInto(pending.dst.asSlice(at, dataLength));
                    pending.received += dataLength;
                }
                case OFFSET_HOLE -> {
                    require(Long.BYTES + Integer.BYTES);
                    long offset = in.getLong();
                    long holeLength = Integer.toUnsignedLong(in.getInt());
                    long at = contentOffset(pending, offset, holeLength);
                    pending.dst.asSlice(at, holeLength).fill((byte) 0);
                    pending.received += holeLength;
                }
                default -> {
                    // NONE: nothing to read.
                }
            }
        }
        if (chunk.done()) {
            if (pending.error == null && pending.command == NbdCommand.READ && pending.received != pending.length) {
                throw new NbdProtocolException("READ reply covered " + pending.received + " of " + pending.length
                        + " bytes");
            }
            finish(pending, pending.error);
        }
    }

    /** Offset inside the request's buffer of a content chunk, which must lie inside the request. */
    private static long contentOffset(Pending pending, long offset, long length) throws NbdProtocolException {
        long at = offset - pending.offset;
        if (length <= 0 || at < 0 || at > pending.length - length) {
            throw new NbdProtocolException("content chunk [" + offset + ", +" + length + ") outside the request ["
                    + pending.offset + ", +" + pending.length + ")");
        }
        return at;
    }

    /** Copies buffered bytes into {@code dst}, then reads the rest straight from the socket. */
    private void readInto(MemorySegment dst) throws IOException {
        ByteBuffer target = dst.asByteBuffer();
        int buffered = Math.min(in.remaining(), target.remaining());
        target.put(target.position(), in, in.position(), buffered);
        target.position(buffered);
        in.position(in.position() + buffered);
        while (target.hasRemaining()) {
            if (channel.read(target) < 0) {
                throw new NbdProtocolException("connection closed inside read data");
            }
        }
    }

    private void require(int bytes) throws IOException {
        if (!fill(bytes)) {
            throw new NbdProtocolException("connection closed inside a reply");
        }
    }

    /** Buffers at least {@code bytes} bytes; false on end of stream with nothing buffered. */
    private boolean fill(int bytes) throws IOException {
        while (in.remaining() < bytes) {
            in.compact();
            int read;
            try {
                read = channel.read(in);
            } finally {
                in.flip();
            }
            if (read < 0) {
                if (in.hasRemaining()) {
                    throw new NbdProtocolException("connection closed inside a reply");
                }
                return false;
            }
        }
        return true;
    }

    /** Fails every request in flight and every later one; the first cause wins. */
    private void fail(IOException cause) {
        synchronized (table) {
            if (failure == null) {
                failure = cause;
            }
        }
        for (int slot = 0; slot < MAX_IN_FLIGHT; slot++) {
            Pending pending;
            synchronized (table) {
                pending = table[slot];
            }
            if (pending != null) {
                finish(pending, failure);
            }
        }
        try {
            channel.close();
        } catch (IOException e) {
            LOG.debug("nbd client {}: close: {}", uri, e.toString());
        }
    }

    private IOException closedException() {
        return new IOException("NBD client for " + uri + " is closed");
    }

    private static String describe(Pending pending) {
        return pending.command + " offset=" + pending.offset + " length=" + pending.length;
    }
}
