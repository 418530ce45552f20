package org.pcache.admin;

/** A message the cache does not accept: the one line says what was sent, and what was expected instead. */
public final class InvalidMessageException extends Exception {

    private static final long serialVersionUID = 1L;

    InvalidMessageException(String message) {
        super(message);
    }
}
