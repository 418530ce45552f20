#!/usr/bin/env bash
# Ceph RBD benchmark: pcache in front of an RBD image's NBD export against that export alone, side by side in one
# run, with fio's nbd engine over unix sockets (4 KiB blocks): random writes QD1 and QD16, random writes with
# fsync=1 (a FLUSH after every write), random reads that hit the cache and that miss it, QD1 and QD16; then the
# drain of what the write runs left dirty, against the image's own best random-write rate. Prints IOPS, p50/p99
# completion latency and the ratio pcache/image.
#
# usage: bench/ceph/bench.sh     (builds server/target/pcache.jar when missing or stale; starts and stops its own
#   RUNTIME=10 CACHE_SIZE=1G WRITE_SIZE=128M bench/ceph/bench.sh        one-node cluster with bench/ceph/cluster.sh)
#
# Image layout (IMAGE_SIZE 2G): [0, 64M) the hit region, written through pcache and drained before the reads, so
# pcache serves it from the cache and the image holds it too; [512M, 1G) the miss region, written on the image
# directly, so pcache has none of it: the QD1 miss run reads its first half, the QD16 run its second half, each
# block at most once per run (fio's random map), so every read misses; [1G, 2G) the write region. The image's runs
# come first, so pcache's writeback never competes with them; pcache's reads come before its writes. pcache's write runs stop after WRITE_SIZE bytes or
# RUNTIME seconds, whichever comes first, so they measure writes while the cache has room.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk

RUNTIME=${RUNTIME:-10}
CACHE_SIZE=${CACHE_SIZE:-1G}
WRITE_SIZE=${WRITE_SIZE:-128M}
SHM=${SHM:-/dev/shm}
work=$(mktemp -d /tmp/ceph-bench.XXXXXX)
shm_work=$(mktemp -d "$SHM/ceph-bench.XXXXXX")
pcache_pid=
cleanup() {
    if [ -n "$pcache_pid" ]; then kill "$pcache_pid" 2>/dev/null || true; wait "$pcache_pid" 2>/dev/null || true; fi
    [ -d "$work/ceph/pids" ] && bench/ceph/cluster.sh stop "$work/ceph" || true
    rm -rf "$work" "$shm_work"
}
trap cleanup EXIT

command -v fio >/dev/null || { echo "ceph-bench: fio is not installed" >&2; exit 1; }
jar=server/target/pcache.jar
if [ ! -f $jar ] || [ -n "$(find pom.xml {core,nbd,server}/pom.xml {core,nbd,server}/src/main -newer $jar -print -quit)" ]; then
    echo "ceph-bench: building $jar ..." >&2
    mvn -q -B -o -DskipTests -DskipITs package >&2
fi
pcache() { "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar $jar "$@"; }

echo "ceph-bench: runtime=${RUNTIME}s cache=$CACHE_SIZE on $SHM write_size=$WRITE_SIZE cpus=$(nproc)" \
    "load=$(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%FT%TZ)" >&2
image=$(IMAGE_SIZE=2G bench/ceph/cluster.sh start "$work/ceph")

"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -jar $jar serve --cache "$shm_work/cache.img" --cache-size "$CACHE_SIZE" --backing "$image" \
    --socket "$work/pcache.sock" --admin 127.0.0.1:0 >"$work/pcache.out" 2>"$work/pcache.log" &
pcache_pid=$!
for _ in $(seq 300); do
    grep -q '^pcache: serving ' "$work/pcache.out" 2>/dev/null && break
    kill -0 $pcache_pid 2>/dev/null || { cat "$work/pcache.log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^pcache: serving ' "$work/pcache.out" || { echo "ceph-bench: pcache did not start" >&2; exit 1; }
cached="nbd+unix:///?socket=$work/pcache.sock"
admin=$(sed -n 's/.*, admin \(.*\))$/\1/p' "$work/pcache.out")

run_fio() {  # $1 = uri, $2 = rw, $3 = iodepth, $4 = offset, $5 = size, rest = fio options; "iops p50_us p99_us"
    local uri=$1 rw=$2 qd=$3 offset=$4 size=$5; shift 5
    fio --output-format=json --name=j --ioengine=nbd --uri="$uri" --offset="$offset" --size="$size" --bs=4k \
        --runtime="$RUNTIME" --rw="$rw" --iodepth="$qd" --randrepeat=0 "$@" \
        >"$work/fio.json" 2>"$work/fio.err" || { cat "$work/fio.err" >&2; exit 1; }
    /usr/bin/python3 - "$work/fio.json" "$rw" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.find("{"):])["jobs"][0]
side = job["write" if "write" in sys.argv[2] else "read"]
pct = side["clat_ns"]["percentile"]
print("%.0f %.1f %.1f" % (side["iops"], pct["50.000000"] / 1000, pct["99.000000"] / 1000))
PY
}

dirty_bytes() {
    pcache status --json --admin "$admin" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["dirty_bytes"])'
}

# Fill: the miss region on the image directly, the hit region through pcache, drained to the image.
fio --name=fill --ioengine=nbd --uri="$image" --offset=512M --size=512M --bs=1M --rw=write --iodepth=8 >/dev/null
fio --name=fill --ioengine=nbd --uri="$cached" --offset=0 --size=64M --bs=1M --rw=write --iodepth=8 >/dev/null
pcache drain --admin "$admin" >/dev/null
# Warm-up of pcache's read path (hits only), so the JIT has compiled it.
fio --name=warm --ioengine=nbd --uri="$cached" --offset=0 --size=64M --bs=4k --rw=randread --iodepth=8 \
    --runtime=4 --time_based >/dev/null

declare -A result
# name rw qd offset size extra-options
# Reads first: pcache's write runs leave dirty data whose writeback would compete with its own read misses.
runs=(
    "randread_hit_qd1 randread 1 0 64M --norandommap --time_based"
    "randread_hit_qd16 randread 16 0 64M --norandommap --time_based"
    "randread_miss_qd1 randread 1 512M 256M"
    "randread_miss_qd16 randread 16 768M 256M"
    "randwrite_qd1 randwrite 1 1G 1G --norandommap"
    "randwrite_qd16 randwrite 16 1G 1G --norandommap"
    "randwrite_fsync1 randwrite 1 1G 1G --norandommap --fsync=1"
)
for run in "${runs[@]}"; do
    read -r name rw qd offset size extra <<<"$run"
    # shellcheck disable=SC2086
    result[image_$name]=$(run_fio "$image" "$rw" "$qd" "$offset" "$size" --time_based $extra)
    echo "ceph-bench: image  $name ${result[image_$name]}" >&2
done
for run in "${runs[@]}"; do
    read -r name rw qd offset size extra <<<"$run"
    cap=()
    [ "$rw" = randwrite ] && cap=(--io_size="$WRITE_SIZE")
    # shellcheck disable=SC2086
    result[pcache_$name]=$(run_fio "$cached" "$rw" "$qd" "$offset" "$size" "${cap[@]}" $extra)
    echo "ceph-bench: pcache $name ${result[pcache_$name]}" >&2
done

dirty=$(dirty_bytes)
began=$(date +%s.%N)
pcache drain --admin "$admin" >/dev/null
drain_s=$(/usr/bin/python3 -c "import time; print('%.2f' % ($(date +%s.%N) - $began))")

printf '%-20s %10s %9s %9s %11s %9s %9s %7s\n' workload image_iops p50_us p99_us pcache_iops p50_us p99_us ratio
for run in "${runs[@]}"; do
    read -r name _ <<<"$run"
    read -r ii ip50 ip99 <<<"${result[image_$name]}"
    read -r pi pp50 pp99 <<<"${result[pcache_$name]}"
    ratio=$(/usr/bin/python3 -c "print('%.2f' % ($pi / max($ii, 1)))")
    printf '%-20s %10s %9s %9s %11s %9s %9s %7s\n' "$name" "$ii" "$ip50" "$ip99" "$pi" "$pp50" "$pp99" "$ratio"
done
read -r best _ <<<"${result[image_randwrite_qd16]}"
/usr/bin/python3 - "$dirty" "$drain_s" "$best" <<'PY'
import sys
dirty, seconds, best = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
rate = dirty / seconds / 2**20 if seconds > 0 else 0
image = best * 4096 / 2**20
print("\ndrain: %.1f MiB dirty in %.2f s = %.1f MiB/s; the image's 4 KiB random writes at QD16: %.1f MiB/s; ratio %.2f"
      % (dirty / 2**20, seconds, rate, image, rate / image if image else 0))
PY
