package org.pcache.admin;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

/**
 * The secret that opens the admin endpoint: sent as {@code Authorization: Bearer TOKEN} by the client, required on
 * every request by the server once one is configured.
 *
 * <p>Invariant: the secret never leaves this object except as the header the client sends; {@link #toString} does
 * not show it, so a token can be logged or printed by mistake without leaking.
 */
public final class AdminToken {

    private static final String SCHEME = "Bearer ";
    /** Longest token accepted: a line of a file, not a document. */
    static final int MAX_LENGTH = 4096;

    private final byte[] secret;

    private AdminToken(byte[] secret) {
        this.secret = secret;
    }

    /**
     * The token in {@code text}, without surrounding whitespace (a trailing newline of a file). It must be 16 to
     * {@value #MAX_LENGTH} visible ASCII characters.
     *
     * @throws IllegalArgumentException saying what is wrong, never showing the text
     */
    public static AdminToken of(String text) {
        String token = text.strip();
        if (token.length() < 16 || token.length() > MAX_LENGTH || !token.chars().allMatch(c -> c > ' ' && c < 127)) {
            throw new IllegalArgumentException("the admin token must be 16 to " + MAX_LENGTH
                    + " visible ASCII characters without spaces (e.g. from 'openssl rand -hex 32'), got "
                    + token.length() + " characters");
        }
        return new AdminToken(token.getBytes(StandardCharsets.US_ASCII));
    }

    /** The value of the {@code Authorization} header a client sends. */
    String authorization() {
        return SCHEME + new String(secret, StandardCharsets.US_ASCII);
    }

    /** Whether an {@code Authorization} header value (null when absent) carries this token; constant time. */
    boolean admits(String authorization) {
        if (authorization == null || !authorization.regionMatches(true, 0, SCHEME, 0, SCHEME.length())) {
            return false;
        }
        byte[] offered = authorization.substring(SCHEME.length()).strip().getBytes(StandardCharsets.US_ASCII);
        return MessageDigest.isEqual(secret, offered);
    }

    @Override
    public String toString() {
        return "AdminToken[redacted]";
    }
}
