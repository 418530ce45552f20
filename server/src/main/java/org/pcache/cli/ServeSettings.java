package org.pcache.cli;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.pcache.admin.AdminToken;
import org.pcache.cache.CacheMode;
import org.pcache.nbd.DiscardPolicy;
import org.pcache.nbd.TlsMode;

/**
 * What {@code pcache serve} was asked to serve, after the command line was read. An empty optional means the option
 * was not given: a new file or cache then gets the default, an existing one keeps what it has.
 *
 * @param cacheFile   the cache region's file
 * @param cacheSize   size for a cache file that does not exist yet (default 1 GiB); an existing file must match it
 * @param backing     a file or block device path, or an NBD URI
 * @param backingSize size for a backing file that does not exist yet (default 8 GiB); an existing device must match
 * @param dataCrc     data CRC for a new cache (default false); an existing cache must match it
 * @param gcPercent   gc_percent: set on a new cache, persisted on an existing one
 * @param format      format the cache region whatever it holds (otherwise only a blank one)
 * @param forceBacking open the cache even when it records another backing device, and record this one
 * @param addresses   where the NBD server listens (TCP and unix), at least one
 * @param exportName  the NBD export name
 * @param readOnly    serve the export read-only (NBD_FLAG_READ_ONLY; write-type commands get EPERM)
 * @param admin       the address of the admin endpoint: loopback unless a token is configured
 * @param adminToken  the token the admin endpoint requires on every request, if any
 * @param tls         whether the NBD server offers or requires TLS
 * @param tlsCertificates the server's credentials directory; present unless TLS is off
 * @param tlsVerifyPeer   whether clients must present a certificate signed by the directory's CA
 * @param backingTlsCertificates credentials for an {@code nbds} backing URI that names none
 * @param discard     what a client's TRIM does: passed down (recorded in the cache, later discarded on the backing
 *                    device) or ignored
 * @param writebackDepth backing writes writeback keeps in flight at most
 * @param writebackLow   percent of the data area dirty below which writeback idles
 * @param writebackHigh  percent dirty from which writeback keeps its full depth in flight
 * @param backingDirect   open a file or block device backing with O_DIRECT
 * @param readAhead       bytes read ahead for sequential misses (0: off)
 * @param mode        the cache mode: set on a new cache, persisted on an existing one
 * @param sequentialCutoff bytes of a connection's sequential run after which it bypasses the cache (0: off)
 */
record ServeSettings(Path cacheFile, OptionalLong cacheSize, String backing, OptionalLong backingSize,
                     Optional<Boolean> dataCrc, OptionalInt gcPercent, boolean format, boolean forceBacking,
                     List<SocketAddress> addresses, String exportName, boolean readOnly, InetSocketAddress admin,
                     Optional<AdminToken> adminToken, TlsMode tls, Optional<Path> tlsCertificates,
                     boolean tlsVerifyPeer, Optional<Path> backingTlsCertificates, DiscardPolicy discard,
                     int writebackDepth, int writebackLow, int writebackHigh, boolean backingDirect, long readAhead,
                     Optional<CacheMode> mode, long sequentialCutoff) {

    static final long DEFAULT_CACHE_SIZE = 1L << 30;
    static final long DEFAULT_BACKING_SIZE = 8L << 30;

    ServeSettings {
        addresses = List.copyOf(addresses);
        if (addresses.isEmpty()) {
            throw new IllegalArgumentException("no address to listen on");
        }
    }
}
