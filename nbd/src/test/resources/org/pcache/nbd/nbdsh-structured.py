# Run by NbdToolsIT as: nbdsh --base-allocation -u URI -c "exec(open(THIS).read())"
# Checks structured replies, block status and error replies against an empty MemoryExport.
import errno
import nbd

assert h.get_structured_replies_negotiated()
assert h.can_meta_context("base:allocation")
for can in (h.can_multi_conn, h.can_fua, h.can_flush, h.can_trim, h.can_zero, h.can_fast_zero, h.can_df,
            h.can_cache):
    assert can(), can.__name__
assert [h.get_block_size(x) for x in (nbd.SIZE_MINIMUM, nbd.SIZE_PREFERRED, nbd.SIZE_MAXIMUM)] == \
    [1, 4096, 64 << 20]
size = h.get_size()

h.pwrite(b"\xab" * 8192, 65536, nbd.CMD_FLAG_FUA)
assert h.pread(8192, 65536) == b"\xab" * 8192

chunks = []
def chunk(buf, offset, status, error):
    chunks.append((offset, len(buf), status))
    return 0
h.pread_structured(8192, 65536, chunk, nbd.CMD_FLAG_DF)
assert chunks == [(65536, 8192, nbd.READ_DATA)], chunks

extents = {}
def status(context, offset, entries, error):
    extents[context] = list(entries)
    return 0
h.block_status(1 << 20, 0, status)
assert extents["base:allocation"] == [65536, 3, 8192, 0, (1 << 20) - 65536 - 8192, 3], extents
h.block_status(1 << 20, 0, status, nbd.CMD_FLAG_REQ_ONE)
assert extents["base:allocation"] == [65536, 3], extents

h.zero(8192, 65536, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(8192, 65536) == b"\0" * 8192
h.pwrite(b"\xcd" * 4096, 131072)
h.zero(131072, 131072, nbd.CMD_FLAG_FAST_ZERO)
assert h.pread(4096, 131072) == b"\0" * 4096
h.trim(65536, 262144)
h.cache(4096, 0)
h.flush()

def expect(code, operation):
    try:
        operation()
    except nbd.Error as e:
        # libnbd 1.14 reports the errno by name, later versions by number.
        assert e.errno in (code, errno.errorcode[code]), (e.errno, e.string)
        return
    raise AssertionError("no error, expected errno %d" % code)

h.set_strict_mode(0)
expect(errno.EINVAL, lambda: h.pread(4096, size))
expect(errno.ENOSPC, lambda: h.pwrite(b"x" * 4096, size))
h.pwrite(b"x" * 100, size - 1001)
assert h.pread(102, size - 1002) == b"\0" + b"x" * 100 + b"\0"
expect(errno.EINVAL, lambda: h.trim(4096, size))
h.set_strict_mode(nbd.STRICT_COMMANDS | nbd.STRICT_FLAGS | nbd.STRICT_BOUNDS | nbd.STRICT_ZERO_SIZE
                  | nbd.STRICT_ALIGN)
assert h.pread(512, 0) == b"\0" * 512
h.shutdown()
print("OK")
