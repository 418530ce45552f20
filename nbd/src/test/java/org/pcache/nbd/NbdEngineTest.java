package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.pcache.backing.BlockingIo;
import org.pcache.nbd.NbdExport.Allocation;
import org.pcache.nbd.NbdExport.Capability;
import org.pcache.nbd.NbdExport.Extent;

/**
 * {@link NbdEngine}'s discard and write-zeroes, against a server that advertises TRIM and WRITE_ZEROES and one that
 * does not.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class NbdEngineTest {

    private static final long SIZE = 64L << 20;
    private static final int PAGE = MemoryExport.PAGE;

    private MemoryExport export;
    private NbdServer server;
    private NbdEngine engine;

    @AfterEach
    void tearDown() throws Exception {
        if (engine != null) {
            engine.close();
        }
        if (server != null) {
            server.stop();
        }
        if (export != null) {
            export.close();
        }
    }

    private void start(Set<Capability> capabilities) throws Exception {
        export = new MemoryExport("disk", SIZE, capabilities);
        server = new NbdServer(export, NbdServer.Options.defaults()
                .withAddresses(new InetSocketAddress("127.0.0.1", 0)));
        server.start();
        engine = NbdEngine.of(NbdClient.connect(NbdUri.of(server.boundAddresses().get(0), "disk")));
        BlockingIo.write(engine, 0, MemorySegment.ofArray(new byte[16 * PAGE]).fill((byte) 7));
    }

    @Test
    void discardAndWriteZeroesBecomeTrimAndWriteZeroesWhenTheServerAdvertisesThem() throws Exception {
        start(EnumSet.of(Capability.FLUSH, Capability.TRIM, Capability.WRITE_ZEROES));
        assertThat(engine.supportsDiscard()).isTrue();
        assertThat(engine.supportsWriteZeroes()).isTrue();
        BlockingIo.discard(engine, 2 * PAGE, 2 * PAGE);
        BlockingIo.writeZeroes(engine, 8 * PAGE, 40L << 20);
        assertThat(allocation(2 * PAGE, 2 * PAGE)).as("trimmed pages are holes")
                .containsExactly(new Extent(2 * PAGE, Allocation.HOLE));
        assertThat(allocation(8 * PAGE, 8 * PAGE)).as("zeroed by the server, not written")
                .containsExactly(new Extent(8 * PAGE, Allocation.HOLE));
        assertThat(bytes(2 * PAGE, 2 * PAGE)).containsOnly((byte) 0);
        assertThat(bytes(8 * PAGE, 8 * PAGE)).containsOnly((byte) 0);
        assertThat(bytes(4 * PAGE, 4 * PAGE)).containsOnly((byte) 7);
    }

    @Test
    void withoutThemDiscardDoesNothingAndWriteZeroesWritesZeroBlocks() throws Exception {
        start(EnumSet.of(Capability.FLUSH));
        assertThat(engine.supportsDiscard()).isFalse();
        assertThat(engine.supportsWriteZeroes()).isFalse();
        BlockingIo.discard(engine, 2 * PAGE, 2 * PAGE);
        BlockingIo.writeZeroes(engine, 8 * PAGE, 3L << 20);
        assertThat(bytes(0, 8 * PAGE)).as("discard is a no-op").containsOnly((byte) 7);
        assertThat(allocation(8 * PAGE, 8 * PAGE)).as("zero blocks were written")
                .containsExactly(new Extent(8 * PAGE, Allocation.DATA));
        assertThat(bytes(8 * PAGE, 3L << 20)).containsOnly((byte) 0);
    }

    private List<Extent> allocation(long offset, long length) throws Exception {
        return export.blockStatus(offset, length).get(5, TimeUnit.SECONDS);
    }

    private byte[] bytes(long offset, long length) throws Exception {
        byte[] back = new byte[Math.toIntExact(length)];
        BlockingIo.read(engine, offset, MemorySegment.ofArray(back));
        return back;
    }
}
