package org.pcache.backing;

/**
 * Whether an engine can reach its store now: a local file or device always can ({@link State#LOCAL}); a store behind
 * a network connection (an NBD server) is {@link State#CONNECTED} or {@link State#DISCONNECTED} while the engine
 * reconnects, when every request to it fails at once.
 *
 * @param state      where the connection is
 * @param lastError  why it was lost last, or null if it never was
 * @param reconnects connections made again since the engine was opened
 */
public record BackingConnection(State state, String lastError, long reconnects) {

    /** What a local store reports. */
    public static final BackingConnection LOCAL = new BackingConnection(State.LOCAL, null, 0);

    /** Where an engine's connection to its store is. */
    public enum State {
        /** A local file or block device: no connection to lose. */
        LOCAL,
        /** Connected to the remote store. */
        CONNECTED,
        /** The connection was lost; the engine is reconnecting and fails requests meanwhile. */
        DISCONNECTED
    }
}
