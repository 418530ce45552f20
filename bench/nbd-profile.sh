#!/usr/bin/env bash
# The --nbd mode of bench/jfr-profile.sh: starts `pcache serve` (cache region on /dev/shm, backing file on disk),
# fills the first REGION bytes, warms up, then for each WORKLOAD (rw:iodepth, e.g. randwrite:1) records one JFR
# file (settings $1) into $2 while fio's nbd engine runs 4 KiB requests for RUNTIME seconds, and prints the
# recording's hot frames and fio's IOPS. TRANSPORT=unix uses the unix socket instead of TCP.
set -euo pipefail
settings=$1 run_dir=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk
REGION=${REGION:-256M}
RUNTIME=${RUNTIME:-8}
TRANSPORT=${TRANSPORT:-tcp}
mkdir -p "$run_dir"
work=$(mktemp -d /tmp/nbd-profile.XXXXXX)
shm_work=$(mktemp -d /dev/shm/nbd-profile.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work" "$shm_work"
}
trap cleanup EXIT
jar=server/target/pcache.jar
[ -f $jar ] || mvn -q -B -DskipTests -DskipITs package >&2
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED ${PCACHE_JAVA_OPTS:-} -jar $jar serve \
    --cache "$shm_work/cache.img" --cache-size 3G --backing "$work/backing.img" --backing-size 1G \
    --listen 127.0.0.1:0 --socket "$work/pcache.sock" --admin 127.0.0.1:0 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 300); do grep -q '^pcache: serving ' "$work/out" 2>/dev/null && break; sleep 0.1; done
read -r _ _ tcp unix _ <"$work/out"
uri=$tcp
[ "$TRANSPORT" = unix ] && uri=$unix
fio --name=fill --ioengine=nbd --uri="$uri" --size="$REGION" --bs=1M --rw=write --iodepth=8 >/dev/null
fio --name=warm --ioengine=nbd --uri="$uri" --size="$REGION" --bs=4k --rw=randrw --iodepth=8 --runtime=4 \
    --io_size=256M --randrepeat=0 --norandommap >/dev/null
echo "nbd-profile: $TRANSPORT load=$(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%FT%TZ)"
for workload in "$@"; do
    rw=${workload%%:*} qd=${workload##*:}
    recording="$run_dir/nbd-$TRANSPORT-$rw-qd$qd.jfr"
    length=(--time_based)
    [ "$rw" = randwrite ] && length=(--io_size=384M) # writes stay inside the cache, as in bench/nbd-bench.sh
    jcmd "$pid" JFR.start name=w settings="$settings" >/dev/null
    fio --name=p --ioengine=nbd --uri="$uri" --size="$REGION" --bs=4k --rw="$rw" --iodepth="$qd" \
        --runtime="$RUNTIME" "${length[@]}" --randrepeat=0 --norandommap --output-format=terse \
        --terse-version=3 >"$work/fio.terse"
    jcmd "$pid" JFR.stop name=w filename="$recording" >/dev/null
    iops=$(awk -F';' -v rw="$rw" 'NF > 50 {print (rw ~ /write/) ? $49 : $8}' "$work/fio.terse")
    echo "=== $recording ($rw QD$qd: $iops IOPS, load $(cut -d' ' -f1 /proc/loadavg))"
    python3 bench/jfr-hot.py "$recording" jdk.CPUTimeSample "" "${DEPTH:-1}"
done
