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
 * {@code nbd+unix:///export?socket=PATH} for a unix socket. TLS forms ({@code nbds://}) are refused.
 *
 * @param address    an unresolved {@link InetSocketAddress} or a {@link UnixDomainSocketAddress}
 * @param exportName the export, empty for the server's default
 */
public record NbdUri(SocketAddress address, String exportName) {

    private static final String USAGE = "expected nbd://HOST[:PORT][/EXPORT] or nbd+unix:///EXPORT?socket=PATH";

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
            case "nbd" -> tcp(text, uri);
            case "nbd+unix" -> unix(text, uri);
            case "nbds", "nbds+unix" -> throw invalid(text, "TLS is not supported");
            default -> throw invalid(text, "unknown scheme '" + scheme + "'");
        };
    }

    /** The URI a client uses to reach {@code exportName} at {@code address}. */
    public static NbdUri of(SocketAddress address, String exportName) {
        return new NbdUri(address, exportName);
    }

    private static NbdUri tcp(String text, URI uri) {
        if (uri.getHost() == null) {
            throw invalid(text, "no host");
        }
        if (uri.getRawQuery() != null) {
            throw invalid(text, "query parameters are not supported for TCP");
        }
        int port = uri.getPort() == -1 ? NbdProtocol.DEFAULT_PORT : uri.getPort();
        if (port < 1 || port > 65535) {
            throw invalid(text, "port " + port + " out of range");
        }
        String host = uri.getHost().startsWith("[") ? uri.getHost().substring(1, uri.getHost().length() - 1)
                : uri.getHost();
        return new NbdUri(InetSocketAddress.createUnresolved(host, port), exportName(uri));
    }

    private static NbdUri unix(String text, URI uri) {
        if (uri.getRawAuthority() != null) {
            throw invalid(text, "nbd+unix takes no host, write nbd+unix:///EXPORT?socket=PATH");
        }
        String socket = null;
        String query = uri.getRawQuery();
        if (query != null) {
            for (String parameter : query.split("&")) {
                if (parameter.startsWith("socket=")) {
                    socket = URLDecoder.decode(parameter.substring("socket=".length()), StandardCharsets.UTF_8);
                } else {
                    throw invalid(text, "unsupported query parameter '" + parameter + "'");
                }
            }
        }
        if (socket == null || socket.isEmpty()) {
            throw invalid(text, "missing socket=PATH");
        }
        return new NbdUri(UnixDomainSocketAddress.of(Path.of(socket)), exportName(uri));
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
        if (address instanceof UnixDomainSocketAddress unix) {
            return "nbd+unix:///" + name + "?socket=" + unix.getPath();
        }
        InetSocketAddress inet = (InetSocketAddress) address;
        String host = inet.getHostString();
        return "nbd://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + inet.getPort() + "/" + name;
    }
}
