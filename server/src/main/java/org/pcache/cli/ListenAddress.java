package org.pcache.cli;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import picocli.CommandLine;

/**
 * A TCP address, written {@code HOST:PORT}: {@code 127.0.0.1:10809}, {@code localhost:0} (port 0: any free port, for
 * an address to listen on), {@code [::1]:10809}. The host is resolved when the option is read, so an unknown host is
 * a usage error.
 */
final class ListenAddress implements CommandLine.ITypeConverter<InetSocketAddress> {

    private static final String EXPECTED = "expected HOST:PORT, e.g. 127.0.0.1:10809 or [::1]:10809";

    @Override
    public InetSocketAddress convert(String text) {
        int colon = text.lastIndexOf(':');
        if (colon <= 0 || colon == text.length() - 1) {
            throw invalid(text, "no host or no port");
        }
        String host = text.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        } else if (host.contains(":")) {
            throw invalid(text, "an IPv6 host must be written in brackets");
        }
        int port;
        try {
            port = Integer.parseInt(text.substring(colon + 1));
        } catch (NumberFormatException e) {
            throw invalid(text, "the port is not a number");
        }
        if (port < 0 || port > 65535) {
            throw invalid(text, "port " + port + " out of range 0..65535");
        }
        try {
            return new InetSocketAddress(InetAddress.getByName(host), port);
        } catch (UnknownHostException e) {
            throw invalid(text, "unknown host '" + host + "'");
        }
    }

    /** {@code address} as this converter reads it: {@code 127.0.0.1:10810}, {@code [::1]:10810}. */
    static String format(InetSocketAddress address) {
        String host = address.getAddress() != null ? address.getAddress().getHostAddress() : address.getHostString();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort();
    }

    private static CommandLine.TypeConversionException invalid(String text, String reason) {
        return new CommandLine.TypeConversionException("'" + text + "' is not a HOST:PORT address (" + reason
                + "; " + EXPECTED + ")");
    }
}
