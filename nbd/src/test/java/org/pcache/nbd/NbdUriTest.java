package org.pcache.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetSocketAddress;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class NbdUriTest {

    @Test
    void tcpUriWithPortAndExport() {
        NbdUri uri = NbdUri.parse("nbd://example.org:10900/disk%201");
        assertThat(uri.address()).isEqualTo(InetSocketAddress.createUnresolved("example.org", 10900));
        assertThat(uri.exportName()).isEqualTo("disk 1");
        assertThat(uri.toString()).isEqualTo("nbd://example.org:10900/disk%201");
    }

    @Test
    void tcpUriDefaultsToPort10809AndTheDefaultExport() {
        NbdUri uri = NbdUri.parse("nbd://127.0.0.1");
        assertThat(((InetSocketAddress) uri.address()).getPort()).isEqualTo(10809);
        assertThat(uri.exportName()).isEmpty();
    }

    @Test
    void ipv6HostsLoseTheirBrackets() {
        NbdUri uri = NbdUri.parse("nbd://[::1]:2000/");
        assertThat(((InetSocketAddress) uri.address()).getHostString()).isEqualTo("::1");
        assertThat(uri.toString()).isEqualTo("nbd://[::1]:2000/");
    }

    @Test
    void unixUriTakesTheSocketFromTheQuery() {
        NbdUri uri = NbdUri.parse("nbd+unix:///vol?socket=/run/nbd.sock");
        assertThat(uri.address()).isEqualTo(UnixDomainSocketAddress.of(Path.of("/run/nbd.sock")));
        assertThat(uri.exportName()).isEqualTo("vol");
        assertThat(NbdUri.parse(uri.toString())).isEqualTo(uri);
    }

    @Test
    void tlsUrisTakeTheirCredentialsDirectoryAsLibnbdDoes() {
        NbdUri tcp = NbdUri.parse("nbds://example.org:10900/disk?tls-certificates=/etc/pki/nbd");
        assertThat(tcp.tls()).isTrue();
        assertThat(tcp.tlsCertificates()).isEqualTo(Path.of("/etc/pki/nbd"));
        assertThat(tcp.toString()).startsWith("nbds://example.org:10900/disk");
        NbdUri unix = NbdUri.parse("nbds+unix:///disk?socket=/run/nbd.sock&tls-certificates=/certs");
        assertThat(unix.address()).isEqualTo(UnixDomainSocketAddress.of(Path.of("/run/nbd.sock")));
        assertThat(unix.tlsCertificates()).isEqualTo(Path.of("/certs"));
        assertThat(NbdUri.parse("nbds://h/").withDefaultTlsCertificates(Path.of("/d")).tlsCertificates())
                .isEqualTo(Path.of("/d"));
        assertThat(tcp.withDefaultTlsCertificates(Path.of("/d"))).isEqualTo(tcp);
        assertThat(NbdUri.parse("nbd://h/").withDefaultTlsCertificates(Path.of("/d")).tls()).isFalse();
    }

    @Test
    void badUrisSayWhatIsWrong() {
        assertThatThrownBy(() -> NbdUri.parse("http://x/")).hasMessageContaining("unknown scheme 'http'");
        assertThatThrownBy(() -> NbdUri.parse("nbd://h/?tls-certificates=/d"))
                .hasMessageContaining("unsupported query parameter");
        assertThatThrownBy(() -> NbdUri.parse("nbd+unix:///x")).hasMessageContaining("missing socket=PATH");
        assertThatThrownBy(() -> NbdUri.parse("nbd+unix://host/x?socket=/s")).hasMessageContaining("takes no host");
        assertThatThrownBy(() -> NbdUri.parse("nbd://h/?tls=on")).hasMessageContaining("query parameter");
        assertThatThrownBy(() -> NbdUri.parse("/dev/sda")).hasMessageContaining("no scheme")
                .hasMessageContaining("expected nbd://");
        assertThatThrownBy(() -> NbdUri.parse("nbd://h:99999/")).isInstanceOf(IllegalArgumentException.class);
    }
}
