package org.pcache.backing;

/**
 * Carries the status of a finished backing request to the layer above. Runs on the backing device's
 * completion worker, never on the thread that finished the I/O and never under the submitter's lock.
 */
@FunctionalInterface
public interface BackingCompletion {

    /** {@code error} is null when the request succeeded. */
    void complete(BackingRequest request, BackingIoException error);

    /** A completion that does nothing beyond the request's own bookkeeping. */
    BackingCompletion NONE = (request, error) -> { };
}
