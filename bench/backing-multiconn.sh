#!/usr/bin/env bash
# Writeback drain rate through pcache whose backing is nbdkit's memory plugin behind the delay filter (wdelay=2ms,
# nbdkit's default 16 threads per connection), with the backing's NBD_FLAG_CAN_MULTI_CONN as nbdkit advertises it
# (pcache opens 4 connections) and hidden by nbdkit's multi-conn filter (1 connection). fio writes 256 MiB of 4 KiB
# random writes into the cache (QD16), then `pcache drain` writes back what is still dirty; the rate is those dirty
# bytes over the drain's wall time.
#
# usage: bench/backing-multiconn.sh          (from anywhere; needs server/target/pcache.jar, nbdkit and fio)
#   ROUNDS=3 WDELAY=2ms bench/backing-multiconn.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/bin/jdk.sh"
pcache_select_jdk
ROUNDS=${ROUNDS:-2}
WDELAY=${WDELAY:-2ms}
jar=$here/server/target/pcache.jar
work=$(mktemp -d /tmp/backing-multiconn.XXXXXX)
shm=$(mktemp -d /dev/shm/backing-multiconn.XXXXXX)
trap 'rm -rf "$work" "$shm"' EXIT
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

run() { # $1: label, then extra nbdkit filter and parameter
  local label=$1 filter=${2:-} param=${3:-}
  rm -f "$shm/cache.img" "$work"/*.sock
  nbdkit -f -U "$work/b.sock" $filter --filter=delay memory 1G wdelay="$WDELAY" $param & local nbdkit=$!
  while [ ! -S "$work/b.sock" ]; do sleep 0.05; done
  java --enable-native-access=ALL-UNNAMED -jar "$jar" serve --cache "$shm/cache.img" --cache-size 1G \
    --backing "nbd+unix:///?socket=$work/b.sock" --socket "$work/p.sock" --listen 127.0.0.1:0 \
    --admin 127.0.0.1:"$admin_port" --gc-percent 90 >"$work/serve.out" 2>"$work/serve.err" & local serve=$!
  until grep -q "pcache: serving" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
  fio --name=w --ioengine=nbd --uri="nbd+unix:///?socket=$work/p.sock" --rw=randwrite --bs=4k --size=256M \
    --iodepth=16 --randseed=1 --output-format=terse >/dev/null
  local dirty start end
  dirty=$(java -jar "$jar" status --json --admin 127.0.0.1:"$admin_port" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["dirty_bytes"])')
  start=$(date +%s.%N)
  java -jar "$jar" drain --admin 127.0.0.1:"$admin_port" >/dev/null
  end=$(date +%s.%N)
  python3 -c "print('%-30s dirty %6.1f MiB  drained in %5.2f s  %6.1f MB/s' % ('$label', $dirty / 2**20, $end - $start, $dirty / 1e6 / ($end - $start)))"
  kill "$serve"; wait "$serve" || true
  kill "$nbdkit"; wait "$nbdkit" || true
}

for _ in $(seq "$ROUNDS"); do
  run "1 connection (multi-conn hidden)" --filter=multi-conn multi-conn-mode=disable
  run "4 connections (multi-conn)"
done
