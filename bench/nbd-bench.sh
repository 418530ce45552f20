#!/usr/bin/env bash
# NBD benchmark, one run, one table: `pcache serve` (cache region on /dev/shm, backing file on disk) against nbdkit's
# memory plugin (the ceiling: it keeps nothing across a restart), nbdkit's file plugin and `qemu-nbd --cache=writeback`
# (both over one backing file on the same disk), with fio's nbd engine, 4 KiB requests: random reads and writes at QD1
# and QD16, fsync-heavy writes (fio fsync=1: a FLUSH after every write, QD1) and multi-conn (4 connections at QD32
# each, random reads and writes), over TCP and a unix socket. Each cell: IOPS, p50/p99 completion latency in µs and
# the ratio of IOPS to nbdkit memory's. The table is printed as Markdown. Then 4 KiB QD1 write latency through pcache
# whose backing is nbdkit with the delay filter (wdelay=1ms), against writing to that nbdkit export directly.
#
# usage: bench/nbd-bench.sh            (from anywhere; builds server/target/pcache.jar when it is missing or stale)
#   REGION=256M RUNTIME=6 RAMP=1 CACHE_SIZE=4G WRITE_SIZE=256M bench/nbd-bench.sh
#
# Write budget: every write run fits in the cache, so the table measures the cache's write path, not how fast
# writeback and GC make room (a full cache makes writes wait). Write runs therefore end after WRITE_SIZE bytes or
# RUNTIME seconds, whichever comes first (fio --io_size without --time_based; a multi-conn job writes WRITE_SIZE/4
# per connection), on every server alike; IOPS are over the time actually run. Write runs have no ramp (the warm-up
# before the table compiles the data path). The region is CACHE_SIZE of sparse tmpfs, so RAM is used only for what is
# written. The script adds up what it wrote to the cache and stops with an error before that comes near the cache
# size.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk

REGION=${REGION:-256M}
RUNTIME=${RUNTIME:-6}
RAMP=${RAMP:-1}
CACHE_SIZE=${CACHE_SIZE:-4G}
WRITE_SIZE=${WRITE_SIZE:-256M}
SHM=${SHM:-/dev/shm}
work=$(mktemp -d /tmp/nbd-bench.XXXXXX)
shm_work=$(mktemp -d "$SHM/nbd-bench.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work" "$shm_work"
}
trap cleanup EXIT

for tool in fio nbdkit qemu-nbd python3; do
    command -v "$tool" >/dev/null || { echo "nbd-bench: $tool is not installed" >&2; exit 1; }
done
jar=server/target/pcache.jar
if [ ! -f $jar ] || [ -n "$(find pom.xml {core,nbd,server}/pom.xml {core,nbd,server}/src/main -newer $jar -print -quit)" ]; then
    echo "nbd-bench: building $jar ..." >&2
    mvn -q -B -DskipTests -DskipITs package >&2
fi

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bytes() { numfmt --from=iec "$1"; }

wait_for() {  # wait until a file exists (nbdkit pid file), at most 15 s
    for _ in $(seq 150); do [ -e "$1" ] && return 0; sleep 0.1; done
    echo "nbd-bench: $1 did not appear" >&2; exit 1
}

start_nbdkit() {  # $1 = name, $2 = tcp|unix, rest = plugin/filter args; sets NBDKIT_URI
    local name=$1 transport=$2; shift 2
    local pidfile="$work/nbdkit-$name.pid"
    if [ "$transport" = tcp ]; then
        local port; port=$(free_port)
        nbdkit -f -i 127.0.0.1 -p "$port" -P "$pidfile" "$@" >"$work/nbdkit-$name.log" 2>&1 &
        NBDKIT_URI="nbd://127.0.0.1:$port/"
    else
        nbdkit -f -U "$work/nbdkit-$name.sock" -P "$pidfile" "$@" >"$work/nbdkit-$name.log" 2>&1 &
        NBDKIT_URI="nbd+unix:///?socket=$work/nbdkit-$name.sock"
    fi
    pids+=($!)
    wait_for "$pidfile"
}

start_qemu_nbd() {  # $1 = name, $2 = tcp|unix, $3 = file; sets QEMU_URI
    local name=$1 transport=$2 file=$3 pidfile="$work/qemu-$1.pid" listen
    if [ "$transport" = tcp ]; then
        local port; port=$(free_port)
        listen=(-b 127.0.0.1 -p "$port"); QEMU_URI="nbd://127.0.0.1:$port/"
    else
        listen=(-k "$work/qemu-$name.sock"); QEMU_URI="nbd+unix:///?socket=$work/qemu-$name.sock"
    fi
    qemu-nbd -t -f raw --cache=writeback --shared=8 "${listen[@]}" --pid-file="$pidfile" "$file" \
        >"$work/qemu-$name.log" 2>&1 &
    pids+=($!)
    wait_for "$pidfile"
}

start_pcache() {  # $1 = name, $2 = --backing; sets PCACHE_TCP and PCACHE_UNIX from the ready line
    local name=$1 backing=$2 out="$work/pcache-$1.out"
    "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED ${PCACHE_JAVA_OPTS:-} -jar $jar serve \
        --cache "$shm_work/cache-$name.img" --cache-size "$CACHE_SIZE" --backing "$backing" \
        --backing-size "$(bytes 1G)" --listen 127.0.0.1:0 --socket "$work/pcache-$name.sock" --admin 127.0.0.1:0 \
        >"$out" 2>"$work/pcache-$name.log" &
    pids+=($!)
    for _ in $(seq 300); do
        if [ -f "$out" ] && grep -q '^pcache: serving ' "$out"; then
            read -r _ _ PCACHE_TCP PCACHE_UNIX _ <"$out"
            return 0
        fi
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "nbd-bench: pcache serve did not start:" >&2; cat "$work/pcache-$name.log" >&2; exit 1
}

written=0  # bytes written to pcache "main" so far
run_fio() {  # $1 = uri, $2 = workload; prints "iops p50_us p99_us bytes_written"
    local uri=$1 shape=()
    case $2 in
        randread-1) shape=(--rw=randread --iodepth=1) ;;
        randread-16) shape=(--rw=randread --iodepth=16) ;;
        randwrite-1) shape=(--rw=randwrite --iodepth=1) ;;
        randwrite-16) shape=(--rw=randwrite --iodepth=16) ;;
        fsync-1) shape=(--rw=randwrite --iodepth=1 --fsync=1) ;;
        mc-randread-32x4) shape=(--rw=randread --iodepth=32 --numjobs=4 --group_reporting) ;;
        mc-randwrite-32x4) shape=(--rw=randwrite --iodepth=32 --numjobs=4 --group_reporting) ;;
        *) echo "nbd-bench: unknown workload $2" >&2; exit 1 ;;
    esac
    local length=(--time_based --ramp_time="$RAMP")
    case $2 in
        mc-randwrite-*) length=(--io_size=$(( $(bytes "$WRITE_SIZE") / 4 ))) ;;
        *write*|fsync*) length=(--io_size="$WRITE_SIZE") ;;
    esac
    fio --output-format=json --name=j --ioengine=nbd --uri="$uri" --size="$REGION" --bs=4k --runtime="$RUNTIME" \
        "${length[@]}" --randrepeat=0 --norandommap "${shape[@]}" \
        >"$work/fio.json" 2>"$work/fio.err" || { cat "$work/fio.err" >&2; exit 1; }
    /usr/bin/python3 - "$work/fio.json" "$2" <<'PY2'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.find("{"):])["jobs"][0]
side = job["read" if "randread" in sys.argv[2] else "write"]
pct = side["clat_ns"]["percentile"]
print("%.0f %.1f %.1f %d" % (side["iops"], pct["50.000000"] / 1000, pct["99.000000"] / 1000,
      job["write"]["io_bytes"]))
PY2
}

fill() {  # write the benchmark region once, so reads hit written data on every server
    fio --name=fill --ioengine=nbd --uri="$1" --size="$REGION" --bs=1M --rw=write --iodepth=8 >/dev/null
}

budget() {  # $1 = bytes just written to pcache "main"
    written=$((written + $1))
    if [ "$written" -gt $(( $(bytes "$CACHE_SIZE") * 8 / 10 )) ]; then
        echo "nbd-bench: wrote $written bytes to a $CACHE_SIZE cache: lower WRITE_SIZE or raise CACHE_SIZE" >&2
        exit 1
    fi
}

echo "nbd-bench: region=$REGION runtime=${RUNTIME}s ramp=${RAMP}s write_size=$WRITE_SIZE cache=$CACHE_SIZE on $SHM" \
    "cpus=$(nproc)" \
    "load=$(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%FT%TZ)" >&2
# The file servers share one backing file on the disk, laid out in full so neither pays block allocation.
file_backing="$work/file-backing.img"
fio --name=layout --filename="$file_backing" --size=1G --bs=1M --rw=write --end_fsync=1 >/dev/null
declare -A uri
start_nbdkit mem-tcp tcp memory 1G; uri[memory-tcp]=$NBDKIT_URI
start_nbdkit mem-unix unix memory 1G; uri[memory-unix]=$NBDKIT_URI
start_nbdkit file-tcp tcp file "$file_backing"; uri[file-tcp]=$NBDKIT_URI
start_nbdkit file-unix unix file "$file_backing"; uri[file-unix]=$NBDKIT_URI
start_qemu_nbd tcp tcp "$file_backing"; uri[qemu-tcp]=$QEMU_URI
start_qemu_nbd unix unix "$file_backing"; uri[qemu-unix]=$QEMU_URI
start_pcache main "$work/backing.img"; uri[pcache-tcp]=$PCACHE_TCP; uri[pcache-unix]=$PCACHE_UNIX
for server in memory-tcp file-tcp pcache-tcp; do fill "${uri[$server]}"; done
budget "$(bytes "$REGION")"
# Warm-up, so the JIT has compiled pcache's data path before the first measured run (writes capped, see above).
for server in memory-tcp pcache-tcp pcache-unix; do
    fio --name=warm --ioengine=nbd --uri="${uri[$server]}" --size="$REGION" --bs=4k --rw=randrw --iodepth=8 \
        --runtime=4 --io_size=256M --randrepeat=0 --norandommap >/dev/null
done
budget $((2 * 256 << 20))

servers=(memory pcache file qemu)
echo "| transport | workload | nbdkit memory IOPS (p50 / p99 µs) | pcache | ratio | nbdkit file | ratio |" \
    "qemu-nbd writeback | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
for transport in tcp unix; do
    for workload in randread-1 randread-16 randwrite-1 randwrite-16 fsync-1 mc-randread-32x4 mc-randwrite-32x4; do
        row="| $transport | $workload |"
        base=
        for server in "${servers[@]}"; do
            read -r iops p50 p99 bytes_written <<<"$(run_fio "${uri[$server-$transport]}" "$workload")"
            [ "$server" = pcache ] && budget "$bytes_written"
            row="$row $iops ($p50 / $p99) |"
            if [ -z "$base" ]; then
                base=$iops
            else
                row="$row $(/usr/bin/python3 -c "print('%.2f' % ($iops / $base))") |"
            fi
        done
        echo "$row"
    done
done
echo "nbd-bench: wrote $((written >> 20)) MiB to the $CACHE_SIZE cache; load=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(date -u +%FT%TZ)" >&2

# Write latency in front of a slow backing: nbdkit memory with 1 ms per write.
start_nbdkit slow unix --filter=delay memory 1G wdelay=1ms; slow=$NBDKIT_URI
start_pcache slow "$slow"; cached=$PCACHE_UNIX
fio --name=warm --ioengine=nbd --uri="$cached" --size="$REGION" --bs=4k --rw=randwrite --iodepth=8 --runtime=3 \
    --io_size=128M --randrepeat=0 --norandommap >/dev/null
printf '\n%-32s %10s %9s %9s\n' "QD1 4 KiB randwrite, unix" iops p50_us p99_us
read -r si sp50 sp99 _ <<<"$(run_fio "$slow" randwrite-1)"
printf '%-32s %10s %9s %9s\n' "nbdkit delay wdelay=1ms" "$si" "$sp50" "$sp99"
read -r ci cp50 cp99 _ <<<"$(run_fio "$cached" randwrite-1)"
printf '%-32s %10s %9s %9s\n' "pcache in front of it" "$ci" "$cp50" "$cp99"
