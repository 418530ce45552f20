package org.pcache.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.pcache.cache.CacheClosedException;
import org.pcache.cache.CacheFailedException;
import org.pcache.cache.Pcache;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin endpoint of a running cache: HTTP on a loopback address, what {@code dmsetup status} and
 * {@code dmsetup message} are to dm-pcache, plus metrics and a drain.
 *
 * <table>
 * <caption>Routes</caption>
 * <tr><th>request</th><th>answer</th></tr>
 * <tr><td>{@code GET /}</td><td>200, the dashboard: one HTML page (its CSS and script inline) that polls
 *     {@code /status} every second and posts messages and drains</td></tr>
 * <tr><td>{@code GET /status}</td><td>200, the {@link StatusDocument} as JSON</td></tr>
 * <tr><td>{@code GET /metrics}</td><td>200, Prometheus text (version 0.0.4) from the registry</td></tr>
 * <tr><td>{@code POST /message}, body {@code gc_percent N}, {@code writeback_low N} or {@code writeback_high N}</td><td>204 once applied and persisted; 400 with one
 *     line for a message the cache refuses ({@link CacheMessage})</td></tr>
 * <tr><td>{@code POST /drain}</td><td>202, the {@link Drain.Status} of the drain started or joined, as JSON;
 *     progress is then in {@code GET /status}</td></tr>
 * <tr><td>another path</td><td>404</td></tr>
 * <tr><td>another method on a known path</td><td>405 with {@code Allow}</td></tr>
 * </table>
 * Every error answer is one line of text. A request body over {@value #MAX_BODY_LENGTH} bytes gets 413, and a
 * handler failure 500; neither affects the cache or other requests.
 *
 * <p>Who may use it: without a token the endpoint listens on loopback addresses only, so only local users reach
 * it. With an {@link AdminToken} it may listen anywhere, and then every request, on any address, must carry
 * {@code Authorization: Bearer TOKEN}, except {@code GET /}: the dashboard page holds no data, asks for the token and
 * sends it with every request it makes. A request without the token, or with another token, gets 401 with
 * {@code WWW-Authenticate: Bearer} and is logged (method, path, peer; never the header).
 * A POST that carries an {@code Origin} header other than the endpoint's own (a page of another site in a local
 * browser) gets 403, so only the dashboard and non-browser clients such as {@code pcache message} can change the
 * cache.
 *
 * <p>Lifecycle and threading: {@link #start} binds and starts {@value #THREADS} handler threads
 * ({@code pcache-admin-N}); {@link #stop} closes the socket and every connection at once (idle keep-alive
 * connections would otherwise hold it up), then waits up to {@link #STOP_SECONDS} s for the handlers to finish what
 * they are doing and joins them, so no request touches the cache after stop returns. Stop it before closing the
 * cache.
 */
public final class AdminServer implements AutoCloseable {

    /** Port of the endpoint when none is given: the one after NBD's 10809. */
    public static final int DEFAULT_PORT = 10810;
    /** Largest request body read (a message is a few bytes). */
    static final int MAX_BODY_LENGTH = 4096;
    private static final int THREADS = 2;
    /** How long stop waits for the handlers to finish the requests they are answering. */
    private static final int STOP_SECONDS = 5;
    private static final String TEXT = "text/plain; charset=utf-8";
    private static final String JSON = "application/json";
    private static final String HTML = "text/html; charset=utf-8";
    private static final String DASHBOARD = "dashboard.html";
    private static final String PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";
    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);

    private final InetSocketAddress address;
    private final Optional<AdminToken> token;
    private final Pcache cache;
    private final PrometheusMeterRegistry registry;
    private final long openedNanos;
    private final Drain drain;
    private HttpServer server;
    private ExecutorService handlers;

    /** An answer: status code, content type, body, and for 405 the methods allowed. */
    private record Reply(int status, String contentType, byte[] body, String allow) {

        static Reply text(int status, String line) {
            return new Reply(status, TEXT, (line + "\n").getBytes(StandardCharsets.UTF_8), null);
        }

        static Reply json(int status, Object document) throws JsonProcessingException {
            return new Reply(status, JSON, AdminJson.MAPPER.writeValueAsBytes(document), null);
        }

        static Reply methodNotAllowed(String method, String path, String allowed) {
            Reply reply = text(405, method + " " + path + " is not allowed (use " + allowed + ")");
            return new Reply(reply.status, reply.contentType, reply.body, allowed);
        }
    }

    /**
     * An endpoint on {@code address} (loopback) for {@code cache}, opened at {@code openedNanos}
     * ({@link System#nanoTime()}), whose meters, NBD timers included, are in {@code registry}; no token.
     */
    public AdminServer(InetSocketAddress address, Pcache cache, PrometheusMeterRegistry registry, long openedNanos) {
        this(address, Optional.empty(), cache, registry, openedNanos);
    }

    /**
     * An endpoint on {@code address} that, given a {@code token}, requires it on every request and may then listen
     * on any address; without one, on loopback only.
     */
    public AdminServer(InetSocketAddress address, Optional<AdminToken> token, Pcache cache,
                       PrometheusMeterRegistry registry, long openedNanos) {
        if (token.isEmpty() && (address.getAddress() == null || !address.getAddress().isLoopbackAddress())) {
            throw new IllegalArgumentException("the admin endpoint without a token listens on loopback only, not "
                    + address);
        }
        this.address = address;
        this.token = token;
        this.cache = cache;
        this.registry = registry;
        this.openedNanos = openedNanos;
        this.drain = new Drain(cache);
    }

    /** Binds the address and starts answering. */
    public synchronized void start() throws IOException {
        HttpServer bound = HttpServer.create(address, 0);
        handlers = Executors.newFixedThreadPool(THREADS, Thread.ofPlatform().name("pcache-admin-", 0).factory());
        bound.setExecutor(handlers);
        bound.createContext("/", this::handle);
        bound.start();
        server = bound;
        LOG.info("admin endpoint listening address={} token={}", boundAddress(),
                token.isPresent() ? "required" : "none");
    }

    /** The address bound, with the real port when port 0 was asked for. */
    public synchronized InetSocketAddress boundAddress() {
        return server.getAddress();
    }

    /** Stops answering and joins the handler threads. Idempotent. */
    public synchronized void stop() {
        if (server == null) {
            return;
        }
        server.stop(0);
        handlers.shutdown();
        try {
            if (!handlers.awaitTermination(STOP_SECONDS, TimeUnit.SECONDS)) {
                LOG.warn("admin handler threads did not stop");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        server = null;
    }

    @Override
    public void close() {
        stop();
    }

    /** The boundary of every request: whatever happens, the client gets one answer and the server goes on. */
    private void handle(HttpExchange exchange) {
        try (exchange) {
            Reply reply;
            try {
                reply = authorized(exchange) || dashboardPage(exchange) ? route(exchange) : unauthorized(exchange);
            } catch (RuntimeException e) {
                LOG.error("admin {} {} failed", exchange.getRequestMethod(), exchange.getRequestURI(), e);
                reply = Reply.text(500, "internal error: " + e);
            }
            send(exchange, reply);
        } catch (IOException e) {
            LOG.debug("admin client went away before its answer", e);
        }
    }

    private boolean authorized(HttpExchange exchange) {
        return token.isEmpty() || token.get().admits(exchange.getRequestHeaders().getFirst("Authorization"));
    }

    /**
     * {@code GET /}: the page holds no data (it fetches everything through the other paths, with the token the user
     * types into it), so a browser, which sends no bearer token on its own, can load it.
     */
    private static boolean dashboardPage(HttpExchange exchange) {
        return "GET".equals(exchange.getRequestMethod()) && "/".equals(exchange.getRequestURI().getPath());
    }

    private static Reply unauthorized(HttpExchange exchange) {
        boolean offered = exchange.getRequestHeaders().containsKey("Authorization");
        LOG.warn("admin {} {} from {} refused: {}", exchange.getRequestMethod(), exchange.getRequestURI().getPath(),
                exchange.getRemoteAddress(), offered ? "wrong token" : "no token");
        exchange.getResponseHeaders().set("WWW-Authenticate", "Bearer realm=\"pcache\"");
        return Reply.text(401, (offered ? "wrong admin token" : "the admin endpoint requires a token")
                + " (give the server's token with --admin-token-file FILE or PCACHE_ADMIN_TOKEN)");
    }

    private Reply route(HttpExchange exchange) throws IOException {
        String method = exchange.getRequestMethod();
        String path = exchange.getRequestURI().getPath();
        if ("POST".equals(method) && !sameOrigin(exchange)) {
            return Reply.text(403, "POST from origin " + exchange.getRequestHeaders().getFirst("Origin")
                    + " refused (only the dashboard served here may post)");
        }
        return switch (path) {
            case "/" -> "GET".equals(method) ? new Reply(200, HTML, dashboard(), null)
                    : Reply.methodNotAllowed(method, path, "GET");
            case "/status" -> "GET".equals(method) ? Reply.json(200, status())
                    : Reply.methodNotAllowed(method, path, "GET");
            case "/metrics" -> "GET".equals(method) ? new Reply(200, PROMETHEUS_TEXT,
                    registry.scrape().getBytes(StandardCharsets.UTF_8), null)
                    : Reply.methodNotAllowed(method, path, "GET");
            case "/message" -> "POST".equals(method) ? message(exchange.getRequestBody())
                    : Reply.methodNotAllowed(method, path, "POST");
            case "/drain" -> "POST".equals(method) ? Reply.json(202, drain.start())
                    : Reply.methodNotAllowed(method, path, "POST");
            default -> Reply.text(404, "no such path: " + path
                    + " (expected /, /status, /metrics, /message or /drain)");
        };
    }

    /** Whether the request carries no Origin (not a browser page) or this endpoint's own. */
    private static boolean sameOrigin(HttpExchange exchange) {
        String origin = exchange.getRequestHeaders().getFirst("Origin");
        String host = exchange.getRequestHeaders().getFirst("Host");
        return origin == null || origin.equals("http://" + host);
    }

    private static byte[] dashboard() throws IOException {
        try (InputStream page = AdminServer.class.getResourceAsStream(DASHBOARD)) {
            if (page == null) {
                throw new IllegalStateException(DASHBOARD + " is missing from the jar");
            }
            return page.readAllBytes();
        }
    }

    private StatusDocument status() {
        return StatusDocument.of(cache.status(), cache.segmentUses(), registry,
                (System.nanoTime() - openedNanos) / 1e9, drain.status());
    }

    private Reply message(InputStream body) throws IOException {
        byte[] bytes = body.readNBytes(MAX_BODY_LENGTH + 1);
        if (bytes.length > MAX_BODY_LENGTH) {
            return Reply.text(413, "message longer than " + MAX_BODY_LENGTH + " bytes");
        }
        CacheMessage message;
        try {
            message = CacheMessage.parse(new String(bytes, StandardCharsets.UTF_8));
        } catch (InvalidMessageException e) {
            return Reply.text(400, e.getMessage());
        }
        try {
            message.apply(cache);
        } catch (CacheClosedException closed) {
            return Reply.text(503, "the cache is closing: " + closed.getMessage());
        } catch (CacheFailedException failed) {
            return Reply.text(503, failed.getMessage());
        } catch (InvalidMessageException e) {
            return Reply.text(400, e.getMessage());
        }
        LOG.info("admin message applied: {}", message.text());
        return new Reply(204, TEXT, new byte[0], null);
    }

    private static void send(HttpExchange exchange, Reply reply) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", reply.contentType());
        if (reply.allow() != null) {
            exchange.getResponseHeaders().set("Allow", reply.allow());
        }
        boolean empty = reply.body().length == 0;
        exchange.sendResponseHeaders(reply.status(), empty ? -1 : reply.body().length);
        if (!empty) {
            exchange.getResponseBody().write(reply.body());
        }
    }
}
