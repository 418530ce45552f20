#!/usr/bin/env bash
# Writeback drain speed over a slow NBD backing: fills a pcache with SIZE MiB of random 4 KiB dirty data while its
# backing refuses every write (writeback retries, nothing leaves the cache), stops it, then serves the same cache over
# the same file behind nbdkit's delay filter (WDELAY per write) and times `pcache drain`. nbdkit's stats filter counts
# the backing flushes the drain made.
#
#   bench/writeback-drain.sh JAR [SIZE_MIB=256] [WDELAY=1ms] [NBDKIT_THREADS=16] [-- extra serve options]
#
# Prints one line: jar, MiB, seconds, MiB/s, backing writes, backing flushes, flushes per GiB.
set -euo pipefail

jar=$1
mib=${2:-256}
wdelay=${3:-1ms}
threads=${4:-16}
shift $(( $# < 4 ? $# : 4 ))
[[ ${1:-} == -- ]] && shift
extra=("$@")

source "$(dirname "$0")/../bin/jdk.sh"
pcache_select_jdk >/dev/null

dir=$(mktemp -d /dev/shm/pcache-wbdrain.XXXXXX)
nbdkit_pid=
serve_pid=
cleanup() {
    [[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [[ -n $nbdkit_pid ]] && kill "$nbdkit_pid" 2>/dev/null && wait "$nbdkit_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

truncate -s 1G "$dir/backing.img"
admin_port=$(( 20000 + RANDOM % 20000 ))
backing="nbd+unix:///?socket=$dir/backing.sock"

start_nbdkit() {
    nbdkit -f -t "$threads" -U "$dir/backing.sock" "$@" 2>>"$dir/nbdkit.log" &
    nbdkit_pid=$!
    for _ in $(seq 100); do [[ -S $dir/backing.sock ]] && return; sleep 0.1; done
    echo "nbdkit did not start" >&2; exit 1
}

stop_nbdkit() {
    kill "$nbdkit_pid"; wait "$nbdkit_pid" 2>/dev/null || true; nbdkit_pid=
    rm -f "$dir/backing.sock"
}

start_serve() {
    java -jar "$jar" serve --cache "$dir/cache.img" --cache-size 1G --backing "$backing" \
        --socket "$dir/pcache.sock" --admin "127.0.0.1:$admin_port" "${extra[@]}" >"$dir/serve.log" 2>&1 &
    serve_pid=$!
    for _ in $(seq 600); do grep -q "pcache: serving" "$dir/serve.log" && return; sleep 0.1; done
    cat "$dir/serve.log" >&2; echo "pcache did not start" >&2; exit 1
}

stop_serve() {
    kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
}

# Phase 1: every backing write fails, so everything written stays dirty in the cache.
start_nbdkit --filter=error file "$dir/backing.img" error-pwrite=EIO error-pwrite-rate=1
start_serve
fio --name=fill --ioengine=nbd --uri="nbd+unix:///?socket=$dir/pcache.sock" --rw=randwrite --bs=4k \
    --size="${mib}m" --iodepth=16 --end_fsync=1 --randrepeat=0 --output=/dev/null
stop_serve
stop_nbdkit

# Phase 2: the same file behind a delay on every write; time the drain from the start of the server.
start_nbdkit --filter=stats --filter=delay file "$dir/backing.img" wdelay="$wdelay" statsfile="$dir/stats" \
    statsappend=false
started=$(date +%s.%N)
start_serve
java -jar "$jar" drain --admin "127.0.0.1:$admin_port" >/dev/null 2>&1
ended=$(date +%s.%N)
stop_serve
stop_nbdkit

writes=$(awk '$1 == "write:" {print $2}' "$dir/stats")
flushes=$(awk '$1 == "flush:" {print $2}' "$dir/stats")
awk -v jar="$(basename "$jar")" -v mib="$mib" -v s="$started" -v e="$ended" -v w="${writes:-0}" \
    -v f="${flushes:-0}" 'BEGIN {
        t = e - s; printf "%s MiB=%d seconds=%.2f MiB/s=%.1f backing_writes=%d backing_flushes=%d flushes_per_GiB=%.1f\n",
        jar, mib, t, mib / t, w, f, f * 1024 / mib }'
