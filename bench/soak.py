#!/usr/bin/python3
"""Soak test of `pcache serve`: clients, kill -9 cycles and a verifier holding a model of the device.

Started by bench/soak.sh, which documents the knobs. One process runs everything: nbdkit (memory plugin behind the
delay filter) as the slow backing device, `pcache serve` in front of it, CLIENTS client threads (one libnbd
connection each, one request at a time) and, every KILL_MIN..KILL_MAX seconds, a kill -9 of the server, a restart
and a verification of the whole device against the model.

The model. The device is cut into 4 KiB blocks and the blocks into 256 KiB chunks; chunk c belongs to client
c % CLIENTS, which alone writes, zeroes and trims its blocks, so the operations on a block form one sequence.
Every sector written holds its own sector number and the write's tag (cycle, client, counter) repeated, so any
sector read back names the write it came from; a zeroed sector reads as zeros. Per block the model keeps the
content verified after the last restart (baseline) and the operations since, each with its acknowledgement.

What a restart must show, per sector (docs/cache.md "Durability, in plain words"): the content of the last durable
operation of its block or of a later one. An operation is durable when it was acknowledged with FUA, or
acknowledged before a FLUSH (on any connection: the export is multi-conn) was sent that completed, or acknowledged
more than DURABLE_AFTER seconds before the kill (the kset timer writes every kset within about a second). With no
durable operation since the baseline, the baseline or any later operation. Operations cut by the kill count as not
durable, old or new. A trimmed sector may read as zeros or as any sector ever written there (a trim is advisory),
from then until the block is written again. Between kills a client reads back its own blocks: they must hold
exactly what it wrote last.
"""
import http.client
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time

import nbd

BLOCK = 4096
SECTOR = 512
SECTORS_PER_BLOCK = BLOCK // SECTOR
CHUNK_BLOCKS = 64
ZERO = 0
TRIMMED = -1  # any well-formed sector of this sector number, or zeros
ZERO_SECTOR = bytes(SECTOR)
ZERO_BLOCK = bytes(BLOCK)


def env(name, default):
    return os.environ.get(name, default)


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not m:
        raise SystemExit("soak: bad duration %r (expected e.g. 90s, 3m, 1h)" % text)
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not m:
        raise SystemExit("soak: bad size %r" % text)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def sector_bytes(sector, tag):
    if tag == ZERO:
        return ZERO_SECTOR
    return struct.pack("<QQ", sector, tag) * (SECTOR // 16)


def block_bytes(block, tag):
    if tag == ZERO:
        return ZERO_BLOCK
    first = block * SECTORS_PER_BLOCK
    return b"".join(struct.pack("<QQ", first + i, tag) * (SECTOR // 16) for i in range(SECTORS_PER_BLOCK))


def describe_sector(data):
    if data == ZERO_SECTOR:
        return "zeros"
    sector, tag = struct.unpack_from("<QQ", data)
    whole = data == struct.pack("<QQ", sector, tag) * (SECTOR // 16)
    return "sector %d tag %s%s" % (sector, tag_name(tag), "" if whole else " (not a whole written sector)")


def tag_name(tag):
    if tag == ZERO:
        return "zeros"
    if tag == TRIMMED:
        return "trimmed"
    return "c%d/client%d/#%d" % (tag >> 48, (tag >> 40) & 0xFF, tag & ((1 << 40) - 1))


class Op:
    """One write, zero or trim of a block, as the model remembers it."""
    __slots__ = ("tag", "fua", "seq", "acked_at")

    def __init__(self, tag, fua):
        self.tag = tag
        self.fua = fua
        self.seq = None  # acknowledgement order; None: not acknowledged (cut by the kill)
        self.acked_at = None


class Model:
    """Per block: baseline (a tag, or a tuple of per-sector tags) and the operations since the last restart."""

    def __init__(self, blocks):
        self.baseline = [ZERO] * blocks
        self.ops = [None] * blocks
        self.lock = threading.Lock()
        self.seq = 0
        self.durable_seq = 0

    def acknowledge(self, ops):
        with self.lock:
            self.seq += 1
            seq = self.seq
        now = time.monotonic()
        for op in ops:
            op.seq = seq
            op.acked_at = now

    def flush_sent(self):
        with self.lock:
            return self.seq

    def flush_done(self, seq):
        with self.lock:
            self.durable_seq = max(self.durable_seq, seq)

    def record(self, block, op):
        ops = self.ops[block]
        if ops is None:
            self.ops[block] = [op]
        else:
            ops.append(op)

    def current(self, block):
        """What a live read of the block must show: the last operation's tags, per sector."""
        ops = self.ops[block]
        return expand(ops[-1].tag if ops else self.baseline[block])

    def candidates(self, block, kill_time, durable_after):
        """Per sector, the tags a read after the kill may show."""
        ops = self.ops[block] or []
        start = -1
        for i in range(len(ops) - 1, -1, -1):
            op = ops[i]
            if op.seq is not None and (op.fua or op.seq <= self.durable_seq
                                       or op.acked_at < kill_time - durable_after):
                start = i
                break
        tags = [expand(self.baseline[block])] if start < 0 else []
        tags += [expand(op.tag) for op in ops[max(start, 0):]]
        return [tuple(t[s] for t in tags) for s in range(SECTORS_PER_BLOCK)]

    def settle(self, block, observed, allowed):
        """After a verification: the block's new baseline is what was read, unless a trim may still show through
        (a trimmed block reads as anything written there until it is written again)."""
        ops = self.ops[block]
        last = expand(ops[-1].tag if ops else self.baseline[block])
        if any(TRIMMED in tags for tags in allowed) and expand(observed) != last:
            observed = TRIMMED
        elif last == expand(TRIMMED):
            observed = TRIMMED
        self.baseline[block] = observed
        self.ops[block] = None


def expand(tag):
    return tag if isinstance(tag, tuple) else (tag,) * SECTORS_PER_BLOCK


def sector_matches(data, sector, tag):
    if tag == TRIMMED:
        if data == ZERO_SECTOR:
            return True
        number, written = struct.unpack_from("<QQ", data)
        return number == sector and written != 0 and data == sector_bytes(sector, written)
    return data == sector_bytes(sector, tag)


def observed_tag(data, sector):
    if data == ZERO_SECTOR:
        return ZERO
    return struct.unpack_from("<QQ", data)[1]


class Soak:
    def __init__(self):
        self.duration = seconds(sys.argv[1] if len(sys.argv) > 1 else env("DURATION", "1h"))
        self.seed = int(env("SEED", str(random.SystemRandom().randrange(1 << 31))))
        self.clients = int(env("CLIENTS", "4"))
        self.cache_size = env("CACHE_SIZE", "512M")
        self.device = size(env("DEVICE_SIZE", "1G"))
        self.kill_min = seconds(env("KILL_MIN", "90s"))
        self.kill_max = seconds(env("KILL_MAX", "240s"))
        self.durable_after = seconds(env("DURABLE_AFTER", "3s"))
        self.delay = env("DELAY", "1ms")
        self.jar = env("JAR", "/work/soak/pcache.jar")
        self.work = env("WORK", "/tmp/pcache-soak")
        self.java = os.path.join(os.environ["JAVA_HOME"], "bin", "java")
        self.jcmd = os.path.join(os.environ["JAVA_HOME"], "bin", "jcmd")
        self.blocks = self.device // BLOCK
        self.chunks = self.blocks // CHUNK_BLOCKS
        self.model = Model(self.blocks)
        self.random = random.Random(self.seed)
        self.cycle = 0
        self.server = None
        self.admin = None
        self.start = time.monotonic()
        self.samples = []  # (elapsed s, cycle, pid, RSS, RssAnon, RssShmem, heap used, heap committed; KiB)
        self.cycle_stats = []
        self.mismatches = 0
        self.mismatch_lines = []
        self.unexpected_errors = []
        self.written = 0
        self.zeroed = 0
        self.trimmed = 0
        self.reads = 0
        self.flushes = 0
        self.ops = 0
        self.counter_lock = threading.Lock()
        self.stop_clients = threading.Event()
        self.killed = threading.Event()

    # ---- processes

    def log(self, text):
        print("[%7.1f s] %s" % (time.monotonic() - self.start, text), flush=True)

    def start_backing(self):
        os.makedirs(self.work, exist_ok=True)
        self.backing_sock = os.path.join(self.work, "backing.sock")
        self.sock = os.path.join(self.work, "pcache.sock")
        self.cache_file = os.path.join(self.work, "cache.img")
        for f in (self.backing_sock, self.sock, self.cache_file):
            if os.path.exists(f):
                os.unlink(f)
        self.nbdkit = subprocess.Popen(
            ["nbdkit", "-f", "-U", self.backing_sock, "--filter=delay", "memory", str(self.device),
             "rdelay=" + self.delay, "wdelay=" + self.delay],
            stdout=open(os.path.join(self.work, "nbdkit.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.backing_sock):
            if time.monotonic() > deadline or self.nbdkit.poll() is not None:
                raise SystemExit("soak: nbdkit did not start (see %s/nbdkit.log)" % self.work)
            time.sleep(0.05)

    def start_server(self):
        err = open(os.path.join(self.work, "serve-%03d.err" % self.cycle), "w")
        args = [self.java, "--enable-native-access=ALL-UNNAMED"] + env("SOAK_JAVA_OPTS", "").split() + [
            "-jar", self.jar, "serve", "--cache", self.cache_file, "--cache-size", self.cache_size,
            "--backing", "nbd+unix:///?socket=" + self.backing_sock, "--socket", self.sock,
            "--admin", "127.0.0.1:0", "--gc-percent", env("GC_PERCENT", "70")]
        self.server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.server.stdout.readline()
        if not line.startswith("pcache: serving"):
            self.server.wait()
            raise SystemExit("soak: pcache serve did not start (exit %s, see %s/serve-%03d.err)"
                             % (self.server.returncode, self.work, self.cycle))
        self.admin = re.search(r"admin (\S+?)\)", line).group(1)

    def kill_server(self):
        kill_time = time.monotonic()
        self.killed.set()
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.wait()
        return kill_time

    # ---- clients

    def client(self, index):
        rnd = random.Random(self.seed * 1000003 + self.cycle * 101 + index)
        own = list(range(index, self.chunks, self.clients))
        h = nbd.NBD()
        counter = 0
        try:
            h.connect_unix(self.sock)
        except nbd.Error as e:
            self.unexpected("client %d connect: %s" % (index, e))
            return
        model = self.model
        while not self.stop_clients.is_set():
            chunk = rnd.choice(own)
            first = chunk * CHUNK_BLOCKS + rnd.randrange(CHUNK_BLOCKS)
            n = rnd.choice((1, 1, 2, 4, 8, 16, 32, 64))
            n = min(n, (chunk + 1) * CHUNK_BLOCKS - first)
            kind = rnd.random()
            counter += 1
            tag = (self.cycle << 48) | (index << 40) | counter
            try:
                if kind < 0.30:
                    self.read_own(h, first, n)
                elif kind < 0.38:
                    seq = model.flush_sent()
                    h.flush()
                    model.flush_done(seq)
                    with self.counter_lock:
                        self.flushes += 1
                elif kind < 0.45:
                    self.modify(h, first, n, TRIMMED, False, lambda: h.trim(n * BLOCK, first * BLOCK))
                elif kind < 0.52:
                    fua = rnd.random() < 0.3
                    self.modify(h, first, n, ZERO, fua, lambda: h.zero(
                        n * BLOCK, first * BLOCK, nbd.CMD_FLAG_FUA if fua else 0))
                else:
                    fua = rnd.random() < 0.05
                    data = b"".join(block_bytes(b, tag) for b in range(first, first + n))
                    self.modify(h, first, n, tag, fua, lambda: h.pwrite(
                        data, first * BLOCK, nbd.CMD_FLAG_FUA if fua else 0))
                with self.counter_lock:
                    self.ops += 1
            except nbd.Error as e:
                if not self.killed.is_set():
                    self.unexpected("client %d: %s" % (index, e))
                break
        try:
            h.shutdown()
        except nbd.Error:
            pass

    def modify(self, h, first, n, tag, fua, call):
        ops = []
        for b in range(first, first + n):
            op = Op(tag, fua)
            self.model.record(b, op)
            ops.append(op)
        call()
        self.model.acknowledge(ops)
        with self.counter_lock:
            if tag == TRIMMED:
                self.trimmed += n * BLOCK
            elif tag == ZERO:
                self.zeroed += n * BLOCK
            else:
                self.written += n * BLOCK

    def read_own(self, h, first, n):
        data = h.pread(n * BLOCK, first * BLOCK)
        with self.counter_lock:
            self.reads += 1
        for i in range(n):
            b = first + i
            tags = self.model.current(b)
            block = data[i * BLOCK:(i + 1) * BLOCK]
            if len(set(tags)) == 1 and tags[0] != TRIMMED and block == block_bytes(b, tags[0]):
                continue
            for s in range(SECTORS_PER_BLOCK):
                sector = b * SECTORS_PER_BLOCK + s
                piece = block[s * SECTOR:(s + 1) * SECTOR]
                if not sector_matches(piece, sector, tags[s]):
                    self.mismatch("live read", b, s, piece, [(tags[s],)])

    def unexpected(self, text):
        with self.counter_lock:
            self.unexpected_errors.append("cycle %d: %s" % (self.cycle, text))
        self.log("UNEXPECTED " + text)

    def mismatch(self, where, block, s, piece, allowed):
        with self.counter_lock:
            self.mismatches += 1
            if len(self.mismatch_lines) < 30:
                ops = self.model.ops[block] or []
                history = ", ".join("%s%s%s" % (tag_name(op.tag), " FUA" if op.fua else "",
                                                " acked#%d" % op.seq if op.seq else " unacked") for op in ops)
                line = ("MISMATCH (%s, seed %d, cycle %d): offset %d (block %d, sector %d of it): read %s; allowed %s;"
                        " baseline %s; since: [%s]; durable_seq %d"
                        % (where, self.seed, self.cycle, block * BLOCK + s * SECTOR, block, s, describe_sector(piece),
                           "/".join(tag_name(t) for t in allowed[0]),
                           tag_name(expand(self.model.baseline[block])[s]), history, self.model.durable_seq))
                self.mismatch_lines.append(line)
                self.log(line)

    # ---- verification

    def verify(self, kill_time):
        """Reads the whole device (4 connections) and checks every sector against the model."""
        step = 256  # blocks per read: 1 MiB
        ranges = list(range(0, self.blocks, step))
        lock = threading.Lock()
        checked = [0]

        def worker():
            h = nbd.NBD()
            h.connect_unix(self.sock)
            while True:
                with lock:
                    if not ranges:
                        break
                    first = ranges.pop()
                data = h.pread(step * BLOCK, first * BLOCK)
                for i in range(step):
                    b = first + i
                    block = data[i * BLOCK:(i + 1) * BLOCK]
                    ops = self.model.ops[b]
                    base = self.model.baseline[b]
                    if ops is None and not isinstance(base, tuple) and base != TRIMMED \
                            and block == block_bytes(b, base):
                        continue
                    allowed = self.model.candidates(b, kill_time, self.durable_after)
                    observed = []
                    for s in range(SECTORS_PER_BLOCK):
                        sector = b * SECTORS_PER_BLOCK + s
                        piece = block[s * SECTOR:(s + 1) * SECTOR]
                        if not any(sector_matches(piece, sector, t) for t in allowed[s]):
                            self.mismatch("after kill -9", b, s, piece, [allowed[s]])
                        observed.append(observed_tag(piece, sector))
                    self.model.settle(b, observed[0] if len(set(observed)) == 1 else tuple(observed), allowed)
                with lock:
                    checked[0] += step
            h.shutdown()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        h = nbd.NBD()
        h.connect_unix(self.sock)
        h.flush()
        h.shutdown()
        return checked[0]

    # ---- sampling

    def sampler(self):
        while not self.finished.wait(20):
            self.sample()

    def sample(self):
        server = self.server
        if server is None or server.poll() is not None:
            return
        pid = server.pid
        rss = {}
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(("VmRSS:", "RssAnon:", "RssShmem:")):
                        rss[line.split(":")[0]] = int(line.split()[1])
        except OSError:
            return
        used = committed = None
        try:
            out = subprocess.run([self.jcmd, str(pid), "GC.heap_info"], capture_output=True, text=True,
                                 timeout=30).stdout
            m = re.search(r"heap\s+total (?:reserved \d+K, committed )?(\d+)K, used (\d+)K", out)
            if m:
                committed, used = int(m.group(1)), int(m.group(2))
        except (subprocess.TimeoutExpired, OSError):
            pass
        if len(rss) == 3 and used is not None and server.poll() is None:
            self.samples.append((time.monotonic() - self.start, self.cycle, pid, rss["VmRSS"], rss["RssAnon"],
                                 rss["RssShmem"], used, committed))

    def metrics(self):
        try:
            host, port = self.admin.rsplit(":", 1)
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/status")
            status = json.loads(c.getresponse().read())
            c.close()
            return status
        except (OSError, ValueError):
            return None

    # ---- the run

    def run(self):
        self.log("seed %d, %s, cache %s, device %d MiB, %d clients, kill every %d-%d s, backing delay %s, "
                 "durable after %.1f s" % (self.seed, env("DURATION_TEXT", "%d s" % self.duration), self.cache_size,
                                           self.device >> 20, self.clients, self.kill_min, self.kill_max, self.delay,
                                           self.durable_after))
        self.start_backing()
        self.start_server()
        self.finished = threading.Event()
        sampler = threading.Thread(target=self.sampler, daemon=True)
        sampler.start()
        end = self.start + self.duration
        kills = 0
        try:
            while True:
                self.cycle += 1
                self.killed.clear()
                self.stop_clients.clear()
                threads = [threading.Thread(target=self.client, args=(i,)) for i in range(self.clients)]
                for t in threads:
                    t.start()
                length = self.random.uniform(self.kill_min, self.kill_max)
                kill_at = min(time.monotonic() + length, end)
                last_status = None
                while time.monotonic() < kill_at:
                    time.sleep(min(5.0, max(0.0, kill_at - time.monotonic())))
                    status = self.metrics()
                    if status:
                        last_status = status
                    if self.server.poll() is not None:
                        self.unexpected("pcache serve exited on its own with %s" % self.server.returncode)
                        break
                self.sample()
                kill_time = self.kill_server()
                kills += 1
                self.stop_clients.set()
                for t in threads:
                    t.join()
                started = time.monotonic()
                self.start_server()
                restart = time.monotonic() - started
                started = time.monotonic()
                before = self.mismatches
                self.verify(kill_time)
                self.cycle_stats.append((self.cycle, last_status, restart, time.monotonic() - started,
                                         self.mismatches - before))
                s = last_status or {}
                self.log("cycle %d: kill -9 #%d, restart %.1f s, verify %.1f s, mismatches %d (total %d); "
                         "written %d MiB so far; before the kill: %s"
                         % (self.cycle, kills, restart, time.monotonic() - started, self.mismatches - before,
                            self.mismatches, self.written >> 20, churn_text(s)))
                if time.monotonic() >= end:
                    break
        finally:
            self.finished.set()
            if self.server and self.server.poll() is None:
                self.server.send_signal(signal.SIGTERM)
                self.server.wait()
            check = subprocess.run([self.java, "--enable-native-access=ALL-UNNAMED", "-jar", self.jar, "check",
                                    "--cache", self.cache_file, "--backing-size",
                                    str(self.device)],
                                   capture_output=True, text=True)
            self.nbdkit.terminate()
            self.nbdkit.wait()
        self.report(kills, check)
        return 0 if self.mismatches == 0 and not self.unexpected_errors and check.returncode == 0 else 1

    def report(self, kills, check):
        elapsed = time.monotonic() - self.start
        print()
        print("=== soak result (seed %d, %.0f s)" % (self.seed, elapsed))
        print("bytes written      %d (%.1f GiB; %.1f MiB/s), zeroed %d MiB, trimmed %d MiB"
              % (self.written, self.written / 2 ** 30, self.written / 2 ** 20 / elapsed, self.zeroed >> 20,
                 self.trimmed >> 20))
        print("requests           %d (reads %d, flushes %d)" % (self.ops, self.reads, self.flushes))
        print("kill cycles        %d" % kills)
        print("mismatches         %d" % self.mismatches)
        for line in self.mismatch_lines:
            print("  " + line)
        print("unexpected errors  %d" % len(self.unexpected_errors))
        for line in self.unexpected_errors[:20]:
            print("  " + line)
        print("pcache check       exit %d: %s" % (check.returncode, (check.stdout + check.stderr).strip()
                                                   .replace("\n", " | ")[:300]))
        print("server memory over time, MiB (a new pid after every kill; RSS, RssAnon (heap, stacks, native) and "
              "RssShmem (the mapped cache file on tmpfs) from /proc/PID/status; heap from jcmd GC.heap_info):")
        print("  %8s %5s %8s %8s %8s %9s %10s %15s" % ("time s", "cycle", "pid", "RSS", "RssAnon", "RssShmem",
                                                    "heap used", "heap committed"))
        for t, cycle, pid, rss, anon, shmem, used, committed in self.samples:
            print("  %8.0f %5d %8d %8.1f %8.1f %9.1f %10.1f %15.1f" % (
                t, cycle, pid, rss / 1024, anon / 1024, shmem / 1024, used / 1024, committed / 1024))
        if self.samples:
            third = max(len(self.samples) // 3, 1)
            for name, i in (("RSS", 3), ("RssAnon", 4), ("heap used", 6), ("heap committed", 7)):
                print("%-18s max %.1f MiB; max in the first third of the run %.1f MiB, in the last third %.1f MiB"
                      % (name, max(s[i] for s in self.samples) / 1024, max(s[i] for s in self.samples[:third]) / 1024,
                         max(s[i] for s in self.samples[-third:]) / 1024))
        print("per cycle (status just before the kill):")
        for cycle, status, restart, verify, bad in self.cycle_stats:
            s = status or {}
            print("  cycle %3d: %s; restart %.1f s, verify %.1f s, mismatches %d"
                  % (cycle, churn_text(s), restart, verify, bad))


def mib(value):
    return "?" if value is None else "%.0f" % (value / 2 ** 20)


def churn_text(status):
    return "used %s, dirty %s MiB, written back %s MiB, waited for space %s times, gc %s" % (
        used_text(status), mib(status.get("dirty_bytes")), mib(status.get("bytes_to_backing")),
        status.get("deferred_requests", "?"), json.dumps(status.get("gc", "?")))


def used_text(status):
    used, total = status.get("segs_used"), status.get("cache_segs")
    if used is None or total is None:
        return "?"
    return "%s/%s segments" % (used, total)


if __name__ == "__main__":
    sys.exit(Soak().run())
