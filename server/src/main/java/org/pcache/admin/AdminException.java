package org.pcache.admin;

/** The admin endpoint could not be reached, or refused a request: the one line the user reads. */
public final class AdminException extends Exception {

    private static final long serialVersionUID = 1L;

    AdminException(String message) {
        super(message);
    }

    AdminException(String message, Throwable cause) {
        super(message, cause);
    }
}
