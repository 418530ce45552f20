package org.pcache.backing;

/**
 * Size and alignment of a backing store: the bounds every request is checked against before an engine moves
 * a byte. A request that breaks them fails with a typed error; it never reaches the store (a write past the end
 * of a regular file would otherwise grow it silently).
 */
record DeviceGeometry(long size, int alignment) {

    DeviceGeometry {
        if (size < 0 || alignment < 1) {
            throw new IllegalArgumentException("device geometry size=" + size + " alignment=" + alignment
                    + " (expected: size >= 0, alignment >= 1)");
        }
    }

    /** The error for a range that is out of bounds or misaligned, or null when {@code [offset, +length)} is valid. */
    BackingIoException check(String operation, long offset, long length) {
        if (offset < 0 || length > size - offset) {
            return new BackingIoException(BackingIoException.Reason.OUT_OF_RANGE, operation, offset, length,
                    "range must lie within [0, " + size + ")", null);
        }
        if (offset % alignment != 0 || length % alignment != 0) {
            return new BackingIoException(BackingIoException.Reason.MISALIGNED, operation, offset, length,
                    "offset and length must be multiples of " + alignment, null);
        }
        return null;
    }
}
