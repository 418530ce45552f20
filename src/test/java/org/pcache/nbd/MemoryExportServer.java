package org.pcache.nbd;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Serves a {@link MemoryExport} until killed, for bench/nbd-bench.sh:
 * {@code MemoryExportServer SIZE_BYTES TCP_PORT [UNIX_SOCKET]}. Prints one line per listening URI.
 */
public final class MemoryExportServer {

    private MemoryExportServer() {
    }

    public static void main(String[] args) throws Exception {
        long size = Long.parseLong(args[0]);
        List<SocketAddress> addresses = new ArrayList<>();
        addresses.add(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[1])));
        if (args.length > 2) {
            addresses.add(UnixDomainSocketAddress.of(Path.of(args[2])));
        }
        MemoryExport export = new MemoryExport("", size);
        NbdServer server = new NbdServer(export,
                NbdServer.Options.defaults().withAddresses(addresses.toArray(SocketAddress[]::new)));
        server.start();
        Runtime.getRuntime().addShutdownHook(new Thread(server::stop, "pcache-nbd-shutdown"));
        for (SocketAddress address : server.boundAddresses()) {
            System.out.println(NbdUri.of(address, ""));
        }
        System.out.flush();
        new CountDownLatch(1).await();
    }
}
