#!/usr/bin/env bash
# NBD server benchmark: fio's nbd engine, 4 KiB random writes and reads at QD1 and QD16, over TCP and a
# unix socket, against nbdkit memory and against our server; prints IOPS, p50/p99 completion latency and
# the ratio ours/nbdkit. One run of each workload (RUNTIME seconds after RAMP seconds of warm-up).
#
# usage: bench/nbd-bench.sh            (from the repository root; builds target/pcache.jar if needed)
#   SIZE=1G RUNTIME=8 RAMP=2 bench/nbd-bench.sh
#
# "ours" is the NBD server serving an in-memory export (MemoryExportServer from the test classes), which
# measures the protocol layer alone. Once `pcache serve` exists, set OURS to measure the whole cache, e.g.
#   OURS='./pcache serve --cache /dev/shm/c.img --backing /tmp/b.img --cache-size 2G --backing-size 1G
#         --listen 127.0.0.1:$PORT --socket $SOCK' bench/nbd-bench.sh
# ($PORT and $SOCK are set by this script before OURS is evaluated; the unix socket appearing means ready.)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-8}
RAMP=${RAMP:-2}
work=$(mktemp -d /tmp/nbd-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for tool in fio nbdkit python3; do
    command -v "$tool" >/dev/null || { echo "nbd-bench: $tool is not installed" >&2; exit 1; }
done
if [ ! -f target/pcache.jar ] || [ ! -f target/test-classes/org/pcache/nbd/MemoryExportServer.class ] ||
   [ -n "$(find src pom.xml -newer target/pcache.jar -print -quit)" ]; then
    echo "nbd-bench: building target/pcache.jar and test classes ..." >&2
    mvn -q -B -DskipTests package >&2
fi

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bytes() { numfmt --from=iec "$1"; }

wait_for() {  # wait until a file exists (nbdkit pid file, unix socket), at most 15 s
    for _ in $(seq 150); do [ -e "$1" ] && return 0; sleep 0.1; done
    echo "nbd-bench: $1 did not appear" >&2; exit 1
}

start_nbdkit() {  # $1 = tcp|unix; sets NBDKIT_URI
    local pidfile="$work/nbdkit-$1.pid"
    if [ "$1" = tcp ]; then
        local port; port=$(free_port)
        nbdkit -f -i 127.0.0.1 -p "$port" -P "$pidfile" memory "$SIZE" >"$work/nbdkit-$1.log" 2>&1 &
        NBDKIT_URI="nbd://127.0.0.1:$port/"
    else
        nbdkit -f -U "$work/nbdkit.sock" -P "$pidfile" memory "$SIZE" >"$work/nbdkit-$1.log" 2>&1 &
        NBDKIT_URI="nbd+unix:///?socket=$work/nbdkit.sock"
    fi
    pids+=($!)
    wait_for "$pidfile"
}

start_ours() {  # sets OURS_TCP and OURS_UNIX
    PORT=$(free_port)
    SOCK="$work/ours.sock"
    if [ -n "${OURS:-}" ]; then
        eval "${OURS}" >"$work/ours.log" 2>&1 &
    else
        "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -Xmx1g \
            -cp target/pcache.jar:target/test-classes org.pcache.nbd.MemoryExportServer \
            "$(bytes "$SIZE")" "$PORT" "$SOCK" >"$work/ours.log" 2>&1 &
    fi
    pids+=($!)
    wait_for "$SOCK"
    OURS_TCP="nbd://127.0.0.1:$PORT/"
    OURS_UNIX="nbd+unix:///?socket=$SOCK"
}

run_fio() {  # $1 = uri, $2 = rw, $3 = iodepth; prints "iops p50_us p99_us"
    fio --output-format=json --name=j --ioengine=nbd --uri="$1" --size="$SIZE" --bs=4k --time_based \
        --runtime="$RUNTIME" --ramp_time="$RAMP" --randrepeat=0 --norandommap --rw="$2" --iodepth="$3" \
        >"$work/fio.json" 2>"$work/fio.err" || { cat "$work/fio.err" >&2; exit 1; }
    /usr/bin/python3 - "$work/fio.json" "$2" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.find("{"):])["jobs"][0]["write" if "write" in sys.argv[2] else "read"]
pct = job["clat_ns"]["percentile"]
print("%.0f %.1f %.1f" % (job["iops"], pct["50.000000"] / 1000, pct["99.000000"] / 1000))
PY
}

fill() {  # write the whole export once so reads hit written data on both servers
    fio --name=fill --ioengine=nbd --uri="$1" --size="$SIZE" --bs=1M --rw=write --iodepth=8 >/dev/null
}

echo "nbd-bench: size=$SIZE runtime=${RUNTIME}s ramp=${RAMP}s cpus=$(nproc) $(date -u +%FT%TZ)" >&2
start_nbdkit tcp; nbdkit_tcp=$NBDKIT_URI
start_nbdkit unix; nbdkit_unix=$NBDKIT_URI
start_ours; ours_tcp=$OURS_TCP; ours_unix=$OURS_UNIX
for uri in "$nbdkit_tcp" "$nbdkit_unix" "$ours_tcp"; do fill "$uri"; done
# Warm-up, so the JIT has compiled our data path before the first measured run.
for uri in "$nbdkit_tcp" "$ours_tcp" "$ours_unix"; do
    fio --name=warm --ioengine=nbd --uri="$uri" --size="$SIZE" --bs=4k --rw=randrw --iodepth=8 --time_based \
        --runtime=5 >/dev/null
done

printf '%-6s %-10s %-4s %10s %9s %9s %10s %9s %9s %7s\n' transport workload qd \
    nbdkit_iops p50_us p99_us ours_iops p50_us p99_us ratio
for transport in tcp unix; do
    if [ "$transport" = tcp ]; then theirs=$nbdkit_tcp; ours=$ours_tcp; else theirs=$nbdkit_unix; ours=$ours_unix; fi
    for rw in randwrite randread; do
        for qd in 1 16; do
            read -r ti tp50 tp99 <<<"$(run_fio "$theirs" "$rw" "$qd")"
            read -r oi op50 op99 <<<"$(run_fio "$ours" "$rw" "$qd")"
            ratio=$(/usr/bin/python3 -c "print('%.2f' % ($oi / $ti))")
            printf '%-6s %-10s %-4s %10s %9s %9s %10s %9s %9s %7s\n' "$transport" "$rw" "$qd" \
                "$ti" "$tp50" "$tp99" "$oi" "$op50" "$op99" "$ratio"
        done
    done
done
