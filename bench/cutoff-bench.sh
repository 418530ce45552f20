#!/usr/bin/env bash
# The sequential cutoff against a backup: a 1 GiB cache holds a hot 128 MiB working set (warmed by 64 KiB random
# reads, which never form a sequential run), then a backup-like job reads 2 GiB sequentially and writes 2 GiB
# sequentially elsewhere on the device (fio, 1 MiB requests, QD4), then the hot set is read again at random. Printed
# per run: the hot set's hit ratio in that last pass (bytes from the cache over bytes read, from pcache status), and
# the bypass counters. Run once with the cutoff off (0) and once with bcache's default (4M).
#
# usage: bench/cutoff-bench.sh        (from anywhere; needs server/target/pcache.jar and fio)
#   BACKUP=2G HOT=128M CUTOFFS="0 4M" bench/cutoff-bench.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/bin/jdk.sh"
pcache_select_jdk
BACKUP=${BACKUP:-2G}
HOT=${HOT:-128M}
CUTOFFS=${CUTOFFS:-"0 4M"}
jar=$here/server/target/pcache.jar
work=$(mktemp -d /tmp/cutoff-bench.XXXXXX)
shm=$(mktemp -d /dev/shm/cutoff-bench.XXXXXX)
serve=
trap '[ -n "$serve" ] && kill "$serve" 2>/dev/null; rm -rf "$work" "$shm"' EXIT
admin_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin=127.0.0.1:$admin_port

field() { # $1: python expression over the status document s
  java -jar "$jar" status --json --admin "$admin" | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"
}

fio_nbd() { # fio job arguments
  fio --name=job --ioengine=nbd --uri="nbd+unix:///?socket=$work/p.sock" --output-format=terse "$@" >/dev/null
}

for cutoff in $CUTOFFS; do
  rm -f "$shm/cache.img" "$work/backing.img" "$work"/*.sock
  java --enable-native-access=ALL-UNNAMED -jar "$jar" serve --cache "$shm/cache.img" --cache-size 1G \
    --backing "$work/backing.img" --backing-size 8G --socket "$work/p.sock" --listen 127.0.0.1:0 \
    --admin "$admin" --sequential-cutoff "$cutoff" >"$work/serve.out" 2>"$work/serve.err" & serve=$!
  until grep -q "pcache: serving" "$work/serve.out" 2>/dev/null; do sleep 0.1; done
  fio_nbd --rw=randwrite --bs=64k --size="$HOT" --iodepth=4 --randseed=1      # the hot set, written once
  fio_nbd --rw=randread --bs=64k --size="$HOT" --iodepth=4 --randseed=2       # and used
  start=$(date +%s.%N)
  fio_nbd --rw=read --bs=1M --offset=1G --size="$BACKUP" --iodepth=4          # the backup reads ...
  fio_nbd --rw=write --bs=1M --offset=4G --size="$BACKUP" --iodepth=4         # ... and writes
  end=$(date +%s.%N)
  read0=$(field 's["bytes_read"]'); cached0=$(field 's["bytes_from_cache"]')
  fio_nbd --rw=randread --bs=64k --size="$HOT" --iodepth=4 --randseed=3
  read1=$(field 's["bytes_read"]'); cached1=$(field 's["bytes_from_cache"]')
  bypass=$(field '"sequential %d requests %.0f MiB" % (s["bypass"]["sequential_requests"], s["bypass"]["sequential_bytes"] / 2**20)')
  python3 -c "print('cutoff %-4s backup %s read + %s write in %6.1f s, hot set hit ratio afterwards %5.1f %%, bypass %s' % ('$cutoff', '$BACKUP', '$BACKUP', $end - $start, 100.0 * ($cached1 - $cached0) / ($read1 - $read0), '$bypass'))"
  kill "$serve"; wait "$serve" || true; serve=
done
