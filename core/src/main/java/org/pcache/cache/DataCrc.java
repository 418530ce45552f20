package org.pcache.cache;

/**
 * The data CRC of the extent an on-media key record covers: {@code len} bytes at {@code segOff} of the key's segment.
 * A key cut or split in memory keeps pointing at its record's CRC, so a hit on any part of it can verify the data.
 * Kept only when the cache has data_crc on; a key without one is null there, which keeps keys small.
 */
record DataCrc(int segOff, int len, int value) {
}
