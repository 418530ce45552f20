package org.pcache.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Optional;

/**
 * Talks to the {@link AdminServer} of a running {@code pcache serve}: what {@code pcache status}, {@code message} and
 * {@code drain} use. Every failure is an {@link AdminException} whose message is one line: the endpoint cannot be
 * reached (with a hint), did not answer in time, or refused the request (with the server's line).
 *
 * <p>Threading: one caller at a time; {@link #close} ends the HTTP client's threads.
 */
public final class AdminClient implements AutoCloseable {

    /** How long a connection attempt, and then a request, may take. */
    static final Duration TIMEOUT = Duration.ofSeconds(10);

    private final String base;
    private final HttpClient http;
    private final Optional<AdminToken> token;

    /** A client of the endpoint at {@code address}, without a token. */
    public AdminClient(InetSocketAddress address) {
        this(address, Optional.empty());
    }

    /** A client of the endpoint at {@code address} that sends {@code token} with every request. */
    public AdminClient(InetSocketAddress address, Optional<AdminToken> token) {
        this.token = token;
        String host = address.getHostString();
        this.base = "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort();
        this.http = HttpClient.newBuilder().connectTimeout(TIMEOUT).build();
    }

    /** {@code GET /status}, as the server sent it (indented JSON). */
    public String statusJson() throws AdminException {
        return send(HttpRequest.newBuilder(uri("/status")).GET(), 200);
    }

    /** {@code GET /status}, decoded. */
    public StatusDocument status() throws AdminException {
        return decode(statusJson(), StatusDocument.class);
    }

    /** {@code POST /message}: returns once the cache applied and persisted it. */
    public void message(CacheMessage message) throws AdminException {
        send(HttpRequest.newBuilder(uri("/message")).POST(HttpRequest.BodyPublishers.ofString(message.text())), 204);
    }

    /** {@code POST /drain}: starts a drain, or joins the one running. */
    public Drain.Status startDrain() throws AdminException {
        return decode(send(HttpRequest.newBuilder(uri("/drain")).POST(HttpRequest.BodyPublishers.noBody()), 202),
                Drain.Status.class);
    }

    @Override
    public void close() {
        http.close();
    }

    private URI uri(String path) {
        return URI.create(base + path);
    }

    private String send(HttpRequest.Builder request, int expected) throws AdminException {
        HttpResponse<String> response;
        try {
            token.ifPresent(secret -> request.header("Authorization", secret.authorization()));
            response = http.send(request.timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException e) {
            throw new AdminException("cannot reach the admin endpoint at " + hostPort() + ": connection refused "
                    + "(is pcache serve running, with --admin " + hostPort() + "?)", e);
        } catch (HttpTimeoutException e) {
            throw new AdminException("the admin endpoint at " + hostPort() + " did not answer within "
                    + TIMEOUT.toSeconds() + " s", e);
        } catch (IOException e) {
            throw new AdminException("cannot talk to the admin endpoint at " + hostPort() + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AdminException("interrupted while waiting for the admin endpoint at " + hostPort(), e);
        }
        if (response.statusCode() != expected) {
            String line = response.body().strip();
            throw new AdminException(line.isEmpty() ? "the admin endpoint at " + hostPort() + " answered HTTP "
                    + response.statusCode() : line);
        }
        return response.body();
    }

    private <T> T decode(String json, Class<T> type) throws AdminException {
        try {
            return AdminJson.MAPPER.readValue(json, type);
        } catch (JsonProcessingException e) {
            throw new AdminException("the admin endpoint at " + hostPort() + " sent an unreadable "
                    + type.getSimpleName() + ": " + e.getOriginalMessage(), e);
        }
    }

    private String hostPort() {
        return base.substring("http://".length());
    }
}
