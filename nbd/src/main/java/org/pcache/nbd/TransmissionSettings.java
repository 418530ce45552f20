package org.pcache.nbd;

/**
 * What a connection's handshake settled for the transmission phase.
 *
 * @param transmissionFlags the flags sent to the client (NBD_FLAG_*)
 * @param structuredReplies NBD_OPT_STRUCTURED_REPLY was acknowledged
 * @param baseAllocation    base:allocation was selected, with context id {@link ServerHandshake#BASE_ALLOCATION_ID}
 */
public record TransmissionSettings(int transmissionFlags, boolean structuredReplies, boolean baseAllocation) {

    public boolean has(int transmissionFlag) {
        return (transmissionFlags & transmissionFlag) != 0;
    }
}
