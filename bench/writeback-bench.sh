#!/usr/bin/env bash
# Writeback and read-miss benchmark, side by side in one run: for each backing, the backing alone, pcache in front of
# it, and `nbdkit --filter=cache` in front of it, all driven by fio's nbd engine over unix sockets. Prints IOPS, p50
# completion latency and the ratios pcache/alone and nbdkit-cache/alone.
#
# Backings: a file on the local disk (alone: `nbdkit file`; pcache opens the file itself, once buffered and once
# with --backing-direct), and nbdkit's memory plugin behind `--filter=delay` with 1 ms per read and write.
# Workloads: 4 KiB random writes at QD1 and QD16 (until 2x the cache size or RUNTIME, whichever first), fio fsync=1
# 4 KiB writes, 4 KiB random read misses at QD1 and QD16 on a fresh cache, and 64 KiB sequential read misses with
# read-ahead off and on (pcache only: --read-ahead).
#
# usage: bench/writeback-bench.sh          full run (RUNTIME=20 s per point, ~15 min)
#        QUICK=1 bench/writeback-bench.sh  quick check (RUNTIME=4 s)
#   DISK_DIR=/var/tmp (a disk-backed directory: tmpfs refuses O_DIRECT), CACHE_SIZE=512M, READ_AHEAD=1M
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk

QUICK=${QUICK:-}
RUNTIME=${RUNTIME:-$([ -n "$QUICK" ] && echo 4 || echo 20)}
CACHE_SIZE=${CACHE_SIZE:-512M}
BACKING_SIZE=${BACKING_SIZE:-2G}
READ_AHEAD=${READ_AHEAD:-1M}
DISK_DIR=${DISK_DIR:-/var/tmp}
SHM=${SHM:-/dev/shm}
work=$(mktemp -d /tmp/wb-bench.XXXXXX)
disk_work=$(mktemp -d "$DISK_DIR/wb-bench.XXXXXX")
shm_work=$(mktemp -d "$SHM/wb-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work" "$disk_work" "$shm_work"
}
trap cleanup EXIT
if [ "$(stat -f -c %T "$DISK_DIR")" = tmpfs ]; then
    echo "writeback-bench: $DISK_DIR is tmpfs, which refuses O_DIRECT: set DISK_DIR to a disk-backed directory" >&2
    exit 1
fi
for tool in fio nbdkit python3; do
    command -v "$tool" >/dev/null || { echo "writeback-bench: $tool is not installed" >&2; exit 1; }
done
jar=server/target/pcache.jar
if [ ! -f $jar ] || [ -n "$(find pom.xml {core,nbd,server}/pom.xml {core,nbd,server}/src/main -newer $jar -print -quit)" ]; then
    echo "writeback-bench: building $jar ..." >&2
    mvn -q -B -o -DskipTests -DskipITs package >&2
fi
bytes() { numfmt --from=iec "$1"; }
n=0

start_nbdkit() {  # args: plugin/filter args; sets URI
    n=$((n + 1))
    local pidfile="$work/nbdkit-$n.pid"
    nbdkit -f -U "$work/nbdkit-$n.sock" -P "$pidfile" "$@" >"$work/nbdkit-$n.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 150); do [ -e "$pidfile" ] && break; sleep 0.1; done
    [ -e "$pidfile" ] || { echo "writeback-bench: nbdkit $* did not start" >&2; cat "$work/nbdkit-$n.log" >&2; exit 1; }
    URI="nbd+unix:///?socket=$work/nbdkit-$n.sock"
}

start_pcache() {  # $1 = --backing, rest = more serve options; sets URI and PCACHE_PID (fresh cache each time)
    n=$((n + 1))
    local backing=$1 out="$work/pcache-$n.out"; shift
    "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED ${PCACHE_JAVA_OPTS:-} -jar $jar serve \
        --cache "$shm_work/cache-$n.img" --cache-size "$CACHE_SIZE" --backing "$backing" \
        --socket "$work/pcache-$n.sock" --admin 127.0.0.1:0 "$@" >"$out" 2>"$work/pcache-$n.log" &
    PCACHE_PID=$!
    pids+=($PCACHE_PID)
    for _ in $(seq 300); do
        grep -q '^pcache: serving ' "$out" 2>/dev/null && { URI="nbd+unix:///?socket=$work/pcache-$n.sock"; return; }
        kill -0 $PCACHE_PID 2>/dev/null || break
        sleep 0.1
    done
    echo "writeback-bench: pcache serve did not start:" >&2; cat "$work/pcache-$n.log" >&2; exit 1
}

stop_last() { kill "${pids[-1]}" 2>/dev/null || true; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

run_fio() {  # $1 = uri, $2 = rw, $3 = iodepth, $4 = bs, rest = fio options; prints "iops p50_us"
    local uri=$1 rw=$2 qd=$3 bs=$4; shift 4
    fio --output-format=json --name=j --ioengine=nbd --uri="$uri" --size="$BACKING_SIZE" --bs="$bs" \
        --runtime="$RUNTIME" --randrepeat=0 --norandommap --rw="$rw" --iodepth="$qd" "$@" \
        >"$work/fio.json" 2>"$work/fio.err" || { cat "$work/fio.err" >&2; exit 1; }
    /usr/bin/python3 - "$work/fio.json" "$rw" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.find("{"):])["jobs"][0]
side = job["write" if "write" in sys.argv[2] else "read"]
pct = side["clat_ns"].get("percentile", {"50.000000": 0})
print("%.0f %.1f" % (side["iops"], pct["50.000000"] / 1000))
PY
}

row() {  # $1 = backing, $2 = workload, then alone pcache cache results as "iops p50" pairs
    local b=$1 w=$2 ai=$3 ap=$4 pi=$5 pp=$6 ci=${7:--} cp=${8:--}
    local pr cr
    pr=$(/usr/bin/python3 -c "print('%.2f' % ($pi / $ai if $ai else 0))")
    cr=$([ "$ci" = - ] && echo - || /usr/bin/python3 -c "print('%.2f' % ($ci / $ai if $ai else 0))")
    printf '%-14s %-22s %9s %8s %9s %8s %9s %8s %7s %7s\n' "$b" "$w" "$ai" "$ap" "$pi" "$pp" "$ci" "$cp" "$pr" "$cr"
}

write_size=$((2 * $(bytes "$CACHE_SIZE")))
echo "writeback-bench: runtime=${RUNTIME}s cache=$CACHE_SIZE backing=$BACKING_SIZE read_ahead=$READ_AHEAD" \
    "disk=$DISK_DIR cpus=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%FT%TZ)" >&2
printf '%-14s %-22s %9s %8s %9s %8s %9s %8s %7s %7s\n' backing workload alone p50_us pcache p50_us nbdkit-c \
    p50_us pc/alone nc/alone

bench_backing() {  # $1 = label, $2 = pcache --backing, $3 = extra pcache options, rest = nbdkit args of the backing
    local label=$1 pbacking=$2 popts=$3; shift 3
    local alone cached
    start_nbdkit "$@"; alone=$URI
    start_nbdkit --filter=cache "$@"; cached=$URI
    local -a w
    for w in "randwrite 1" "randwrite 16" "fsync 1" "randread 1" "randread 16"; do
        set -- $w
        local rw=$1 qd=$2 opts=()
        case $rw in
            randwrite) opts=(--io_size="$write_size") ;;
            fsync) rw=randwrite; opts=(--io_size="$write_size" --fsync=1) ;;
            randread) opts=(--time_based) ;;
        esac
        # shellcheck disable=SC2086
        start_pcache "$pbacking" $popts; local ours=$URI
        read -r ai ap <<<"$(run_fio "$alone" "$rw" "$qd" 4k "${opts[@]}")"
        read -r pi pp <<<"$(run_fio "$ours" "$rw" "$qd" 4k "${opts[@]}")"
        read -r ci cp <<<"$(run_fio "$cached" "$rw" "$qd" 4k "${opts[@]}")"
        stop_last
        row "$label" "$1 4k qd$qd" "$ai" "$ap" "$pi" "$pp" "$ci" "$cp"
    done
    for ra in 0 "$READ_AHEAD"; do
        # shellcheck disable=SC2086
        start_pcache "$pbacking" $popts --read-ahead "$ra"; local ours=$URI
        read -r ai ap <<<"$(run_fio "$alone" read 1 64k --time_based)"
        read -r pi pp <<<"$(run_fio "$ours" read 1 64k --time_based)"
        stop_last
        row "$label" "seqread 64k ra=$ra" "$ai" "$ap" "$pi" "$pp"
    done
}

file="$disk_work/backing.img"
fio --name=fill --filename="$file" --size="$BACKING_SIZE" --bs=1M --rw=write --iodepth=1 >/dev/null
sync
bench_backing "disk file" "$file" "" file "$file"
bench_backing "disk O_DIRECT" "$file" "--backing-direct" file "$file" cache=none
start_nbdkit --filter=delay memory "$BACKING_SIZE" rdelay=1ms wdelay=1ms; slow=$URI
bench_backing "delay 1ms" "$slow" "" --filter=delay memory "$BACKING_SIZE" rdelay=1ms wdelay=1ms
