#!/usr/bin/env bash
# Soak test: `pcache serve` with a small cache in front of a slow backing device, several clients mixing writes,
# reads, flushes, trims and write-zeroes over a working set larger than the cache, a kill -9 and restart of the
# server every few minutes, and a verifier holding a model of the device (bench/soak.py explains the model and what
# it may assume after a kill). Prints bytes written, kill cycles, mismatches (must be 0) and the server's RSS and
# heap over time; exits 1 on a mismatch, an unexpected client error or a failing `pcache check` at the end.
#
# usage: bench/soak.sh [DURATION]       (default 1h; 90s, 3m, 1h; needs server/target/pcache.jar, nbdkit, python3-libnbd)
#   knobs (environment): SEED, CLIENTS=4, CACHE_SIZE=512M (dm-pcache's minimum), DEVICE_SIZE=1G (the working set),
#   KILL_MIN=90s KILL_MAX=240s (time between kills), DELAY=1ms (nbdkit delay filter, reads and writes),
#   DURABLE_AFTER=3s (a write acknowledged this long before the kill must survive: the kset timer's "about one
#   second" with a margin), GC_PERCENT=70, JAR (default server/target/pcache.jar; copied into WORK first, so a
#   rebuild does not disturb the run), WORK (default a new /dev/shm/pcache-soak.XXXXXX, removed at the end),
#   SOAK_JAVA_OPTS (extra JVM options for the server).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/bin/jdk.sh"
pcache_select_jdk
duration=${1:-1h}
jar=${JAR:-$here/server/target/pcache.jar}
[ -f "$jar" ] || { echo "soak: $jar is missing (mvn -B -o -pl server -am -DskipTests package)" >&2; exit 2; }
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d /dev/shm/pcache-soak.XXXXXX)
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
cp "$jar" "$WORK/pcache.jar"
echo "soak: $(date -u +%FT%TZ), jar $jar ($(sha256sum "$jar" | cut -c1-12)), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo ?), load $(cut -d' ' -f1-3 /proc/loadavg)"
JAR="$WORK/pcache.jar" WORK="$WORK" DURATION_TEXT="$duration" /usr/bin/python3 "$here/bench/soak.py" "$duration"
