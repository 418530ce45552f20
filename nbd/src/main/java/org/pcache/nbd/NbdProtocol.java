package org.pcache.nbd;

/**
 * Wire constants of the NBD protocol (NetworkBlockDevice/nbd {@code doc/proto.md}): magic numbers, message
 * layouts, flag bits, and the limits pcache enforces on what a peer may send. All fields are big-endian.
 *
 * <pre>
 * request (client)                  simple reply (server)         structured reply chunk (server)
 *  0      4       6      8      16      24     28   0      4      8      16   0      4     6     8      16     20
 *  +------+-------+------+------+-------+------+    +------+------+------+    +------+-----+-----+------+------+
 *  |magic |flags  |type  |handle|offset |length|    |magic |error |handle|    |magic |flags|type |handle|length|
 *  +------+-------+------+------+-------+------+    +------+------+------+    +------+-----+-----+------+------+
 * </pre>
 */
public final class NbdProtocol {

    /** "NBDMAGIC": first eight bytes of the server greeting. */
    public static final long INIT_PASSWD = 0x4e42444d41474943L;
    /** "IHAVEOPT": second eight bytes of the greeting and the first eight of every option. */
    public static final long IHAVEOPT = 0x49484156454F5054L;
    /** Magic of every option reply in fixed newstyle negotiation. */
    public static final long OPTION_REPLY_MAGIC = 0x3e889045565a9L;
    public static final int REQUEST_MAGIC = 0x25609513;
    public static final int SIMPLE_REPLY_MAGIC = 0x67446698;
    public static final int STRUCTURED_REPLY_MAGIC = 0x668e33ef;

    /** The IANA port for newstyle negotiation. */
    public static final int DEFAULT_PORT = 10809;

    public static final int GREETING_LENGTH = Long.BYTES + Long.BYTES + Short.BYTES;
    public static final int CLIENT_FLAGS_LENGTH = Integer.BYTES;
    public static final int OPTION_HEADER_LENGTH = Long.BYTES + Integer.BYTES + Integer.BYTES;
    public static final int OPTION_REPLY_HEADER_LENGTH = Long.BYTES + Integer.BYTES + Integer.BYTES + Integer.BYTES;
    /** Reserved zeroes after the export-name reply unless NBD_FLAG_C_NO_ZEROES was negotiated. */
    public static final int EXPORT_NAME_ZEROES = 124;
    public static final int EXPORT_NAME_REPLY_LENGTH = Long.BYTES + Short.BYTES;

    public static final int REQUEST_HEADER_LENGTH = 28;
    public static final int SIMPLE_REPLY_LENGTH = 16;
    public static final int CHUNK_HEADER_LENGTH = 20;
    /** Offset field in front of the data of an OFFSET_DATA chunk. */
    public static final int OFFSET_DATA_PREFIX = Long.BYTES;
    /** Error code and message length in front of the message of an error chunk. */
    public static final int ERROR_PREFIX = Integer.BYTES + Short.BYTES;
    public static final int BLOCK_DESCRIPTOR_LENGTH = Integer.BYTES + Integer.BYTES;

    // Handshake flags (server) and client flags.
    public static final int FLAG_FIXED_NEWSTYLE = 1;
    public static final int FLAG_NO_ZEROES = 1 << 1;
    public static final int FLAG_C_FIXED_NEWSTYLE = 1;
    public static final int FLAG_C_NO_ZEROES = 1 << 1;

    // Transmission flags.
    public static final int FLAG_HAS_FLAGS = 1;
    public static final int FLAG_READ_ONLY = 1 << 1;
    public static final int FLAG_SEND_FLUSH = 1 << 2;
    public static final int FLAG_SEND_FUA = 1 << 3;
    public static final int FLAG_SEND_TRIM = 1 << 5;
    public static final int FLAG_SEND_WRITE_ZEROES = 1 << 6;
    public static final int FLAG_SEND_DF = 1 << 7;
    public static final int FLAG_CAN_MULTI_CONN = 1 << 8;
    public static final int FLAG_SEND_CACHE = 1 << 10;
    public static final int FLAG_SEND_FAST_ZERO = 1 << 11;

    // Command flags.
    public static final int CMD_FLAG_FUA = 1;
    public static final int CMD_FLAG_NO_HOLE = 1 << 1;
    public static final int CMD_FLAG_DF = 1 << 2;
    public static final int CMD_FLAG_REQ_ONE = 1 << 3;
    public static final int CMD_FLAG_FAST_ZERO = 1 << 4;
    public static final int CMD_FLAGS_KNOWN = CMD_FLAG_FUA | CMD_FLAG_NO_HOLE | CMD_FLAG_DF | CMD_FLAG_REQ_ONE
            | CMD_FLAG_FAST_ZERO;

    /** Structured reply flag: the last chunk of a reply. */
    public static final int REPLY_FLAG_DONE = 1;

    // NBD_REP_INFO information types.
    public static final int INFO_EXPORT = 0;
    public static final int INFO_NAME = 1;
    public static final int INFO_DESCRIPTION = 2;
    public static final int INFO_BLOCK_SIZE = 3;

    // base:allocation status flags.
    public static final int STATE_HOLE = 1;
    public static final int STATE_ZERO = 1 << 1;

    public static final String BASE_ALLOCATION = "base:allocation";

    /** Longest string (export name, description, query, message) the spec allows. */
    public static final int MAX_STRING_LENGTH = 4096;
    /**
     * Minimum block size the server advertises in NBD_INFO_BLOCK_SIZE: any byte offset and length, the spec's default
     * for a server that negotiated none (partial sectors are read-modify-written, {@code BlockSizeAdapter}).
     */
    public static final int MIN_BLOCK_SIZE = 1;
    public static final int PREFERRED_BLOCK_SIZE = 4096;
    /**
     * The spec's 2^25: the payload every peer accepts, which no one may call a denial of service; the longest request
     * the client sends and the longest range the server hands an export.
     */
    public static final int MAX_PAYLOAD_LENGTH = 32 << 20;
    /** Longest READ or WRITE the server accepts, advertised as its maximum payload: nbdkit's limit. */
    public static final int MAX_REQUEST_LENGTH = 64 << 20;

    private NbdProtocol() {
    }
}
