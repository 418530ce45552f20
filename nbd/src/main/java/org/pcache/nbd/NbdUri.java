package org.pcache.nbd;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.net.UnixDomainSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * An NBD URI, as libnbd and qemu write them: {@code nbd://host[:port][/export]} for TCP and
 * {@code nbd+unix:///export?socket=PATH} for a unix socket. The TLS forms {@code nbds://} and {@code nbds+unix://}
 * connect with NBD_OPT_STARTTLS and refuse a server without TLS; as in libnbd, {@code tls-certificates=DIR} names the
 * credentials directory ({@link TlsCredentials}).
 *
 * @param address         an unresolved {@link InetSocketAddress} or a {@link UnixDomainSocketAddress}
 * @param exportName      the export, empty for the server's default
 * @param tls             whether the connection must use TLS
 * @param tlsCertificates the client's credentials directory, null when the URI names none
 */
public record NbdUri(SocketAddress address, String exportName, boolean tls, Path tlsCertificates) {

    private static final String USAGE = "expected nbd://HOST[:PORT][/EXPORT] or nbd+unix:///EXPORT?socket=PATH; "
            + "nbds:// and nbds+unix:// for TLS, with ?tls-certificates=DIR";
    private static final String SOCKET = "socket=";
    private static final String TLS_CERTIFICATES = "tls-certificates=";

    /** A plain (non-TLS) URI. */
    public NbdUri(SocketAddress address, String exportName) {
        this(address, exportName, false, null);
    }

    /** Parses {@code text}; the message of the exception says what is wrong and what is expected. */
    public static NbdUri parse(String text) {
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw invalid(text, e.getReason());
        }
        String scheme = uri.getScheme();
        if (scheme == null) {
            throw invalid(text, "no scheme");
        }
        return switch (scheme) {
            case "nbd", "nbds" -> tcp(text, uri, scheme.equals("nbds"));
            case "nbd+unix", "nbds+unix" -> unix(text, uri, scheme.equals("nbds+unix"));
            default -> throw invalid(text, "unknown scheme '" + scheme + "'");
        };
    }

    /** The URI a client uses to reach {@code exportName} at {@code address}. */
    public static NbdUri of(SocketAddress address, String exportName) {
        return new NbdUri(address, exportName);
    }

    /** This URI with {@code directory} as its credentials unless it names its own; a plain URI is unchanged. */
    public NbdUri withDefaultTlsCertificates(Path directory) {
        return !tls || tlsCertificates != null ? this : new NbdUri(address, exportName, true, directory);
    }

    private static NbdUri tcp(String text, URI uri, boolean tls) {
        if (uri.getHost() == null) {
            throw invalid(text, "no host");
        }
        Path certificates = null;
        if (uri.getRawQuery() != null) {
            for (String parameter : uri.getRawQuery().split("&")) {
                if (tls && parameter.startsWith(TLS_CERTIFICATES)) {
                    certificates = path(parameter, TLS_CERTIFICATES);
                } else {
                    throw invalid(text, "unsupported query parameter '" + parameter + "'");
                }
            }
        }
        int port = uri.getPort() == -1 ? NbdProtocol.DEFAULT_PORT : uri.getPort();
        if (port < 1 || port > 65535) {
            throw invalid(text, "port " + port + " out of range");
        }
        String host = uri.getHost().startsWith("[") ? uri.getHost().substring(1, uri.getHost().length() - 1)
                : uri.getHost();
        return new NbdUri(InetSocketAddress.createUnresolved(host, port), exportName(uri), tls, certificates);
    }

    private static NbdUri unix(String text, URI uri, boolean tls) {
        if (uri.getRawAuthority() != null) {
            throw invalid(text, "nbd+unix takes no host, write nbd+unix:///EXPORT?socket=PATH");
        }
        String socket = null;
        Path certificates = null;
        String query = uri.getRawQuery();
        if (query != null) {
            for (String parameter : query.split("&")) {
                if (parameter.startsWith(SOCKET)) {
                    socket = URLDecoder.decode(parameter.substring(SOCKET.length()), StandardCharsets.UTF_8);
                } else if (tls && parameter.startsWith(TLS_CERTIFICATES)) {
                    certificates = path(parameter, TLS_CERTIFICATES);
                } else {
                    throw invalid(text, "unsupported query parameter '" + parameter + "'");
                }
            }
        }
        if (socket == null || socket.isEmpty()) {
            throw invalid(text, "missing socket=PATH");
        }
        return new NbdUri(UnixDomainSocketAddress.of(Path.of(socket)), exportName(uri), tls, certificates);
    }

    private static Path path(String parameter, String key) {
        return Path.of(URLDecoder.decode(parameter.substring(key.length()), StandardCharsets.UTF_8));
    }

    private static String exportName(URI uri) {
        String path = uri.getPath();
        return path == null || path.isEmpty() ? "" : path.substring(1);
    }

    private static IllegalArgumentException invalid(String text, String reason) {
        return new IllegalArgumentException("invalid NBD URI '" + text + "': " + reason + " (" + USAGE + ")");
    }

    @Override
    public String toString() {
        String name = URLEncoder.encode(exportName, StandardCharsets.UTF_8).replace("+", "%20");
        String scheme = tls ? "nbds" : "nbd";
        if (address instanceof UnixDomainSocketAddress unix) {
            return scheme + "+unix:///" + name + "?socket=" + unix.getPath();
        }
        InetSocketAddress inet = (InetSocketAddress) address;
        String host = inet.getHostString();
        return scheme + "://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + inet.getPort() + "/" + name;
    }
}
