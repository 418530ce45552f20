#!/usr/bin/env bash
# Profiles a JMH benchmark with JFR CPU-time sampling every millisecond (the JDK's "profile"
# settings sample every 10-20 ms, too coarse for microsecond operations) and prints the hot frames
# of every thread. Arguments go to JMH, e.g.
#   bench/jfr-profile.sh CacheWriteBench.writeQd1 -f 1 -wi 3 -i 8
# or, with --nbd, profile `pcache serve` (cache on /dev/shm, backing file on disk) under fio's nbd
# engine, one recording per workload (4 KiB, TCP unless TRANSPORT=unix; RUNTIME seconds each):
#   bench/jfr-profile.sh --nbd randwrite:1 randwrite:16 randread:1 randread:16
# Recordings land under ${PCACHE_JFR_DIR:-/tmp/pcache-jfr}; analyse one again with bench/jfr-hot.py.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/bin/jdk.sh"
pcache_select_jdk
dir=${PCACHE_JFR_DIR:-/tmp/pcache-jfr}
mkdir -p "$dir"
settings="$dir/cpu-1ms.jfc"
sed -e 's|<setting name="period" control="method-sampling-java-interval">[^<]*</setting>|<setting name="period" control="method-sampling-java-interval">1 ms</setting>|' \
    -e '/<event name="jdk.CPUTimeSample">/,/<\/event>/{s|<setting name="enabled">false</setting>|<setting name="enabled">true</setting>|;s|<setting name="throttle">[^<]*</setting>|<setting name="throttle">1ms</setting>|}' \
    "$JAVA_HOME/lib/jfr/profile.jfc" > "$settings"
run_dir="$dir/$(date +%Y%m%d-%H%M%S)"
if [ "${1:-}" = "--nbd" ]; then
    shift
    "$here/nbd-profile.sh" "$settings" "$run_dir" "$@"
else
    "$here/jmh/run" "$@" -prof "jfr:dir=$run_dir;configName=$settings"
fi
find "$run_dir" -name '*.jfr' | while read -r recording; do
    echo "=== $recording"
    python3 "$here/jfr-hot.py" "$recording"
done
