# Run by NbdToolsIT as: NBD_URI=URI nbdsh -c "exec(open(THIS).read())"
# Simple replies, the old NBD_OPT_EXPORT_NAME path, and option-mode listing.
import errno
import os
import nbd

uri = os.environ["NBD_URI"]

simple = nbd.NBD()
simple.set_request_structured_replies(False)
simple.connect_uri(uri)
assert not simple.get_structured_replies_negotiated()
assert not simple.can_df()
simple.pwrite(b"\x11" * 4096, 0)
assert simple.pread(4096, 0) == b"\x11" * 4096
simple.set_strict_mode(0)
try:
    simple.pread(4096, simple.get_size())
    raise AssertionError("read past the end succeeded")
except nbd.Error as e:
    assert e.errno in (errno.EINVAL, "EINVAL"), e.errno
assert simple.pread(512, 0) == b"\x11" * 512
simple.shutdown()

old = nbd.NBD()
old.set_handshake_flags(0)
old.connect_uri(uri)
assert old.pread(512, 0) == b"\x11" * 512
old.shutdown()

listing = nbd.NBD()
listing.set_opt_mode(True)
listing.connect_uri(uri)
names = []
listing.opt_list(lambda name, description: names.append((name, description)) or 0)
assert names == [("disk", "in-memory test export")], names
contexts = []
listing.opt_list_meta_context(lambda context: contexts.append(context) or 0)
assert contexts == ["base:allocation"], contexts
listing.set_export_name("disk")
listing.opt_info()
assert listing.get_size() > 0
listing.set_export_name("missing")
try:
    listing.opt_info()
    raise AssertionError("opt_info for a missing export succeeded")
except nbd.Error:
    pass
listing.opt_abort()
print("OK")
