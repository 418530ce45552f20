package org.pcache.nbd;

/** Whether the server offers TLS (NBD_OPT_STARTTLS), as nbdkit's {@code --tls} and proto.md's modes. */
public enum TlsMode {
    /** NOTLS: NBD_OPT_STARTTLS is answered NBD_REP_ERR_UNSUP. */
    OFF,
    /** Clients may upgrade with NBD_OPT_STARTTLS or stay in plain text. */
    ON,
    /**
     * FORCEDTLS: before TLS only NBD_OPT_STARTTLS and NBD_OPT_ABORT are served; every other option gets
     * NBD_REP_ERR_TLS_REQD and NBD_OPT_EXPORT_NAME ends the session.
     */
    REQUIRE
}
