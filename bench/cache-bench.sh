#!/usr/bin/env bash
# Runs the cache-core (issue 4) and writeback (issue 5) benchmarks recorded in docs/performance.md,
# one after the other, printing the load average before and after each. About 15 minutes.
#   bench/cache-bench.sh [LOG]        (default: cache-bench-<time>.log in the current directory)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log=${1:-cache-bench-$(date +%Y%m%d-%H%M%S).log}
run="$here/jmh/run"

step() {
    echo "=== $* ($(date -Is), load: $(cut -d' ' -f1-3 /proc/loadavg))"
    "$@"
    echo "=== done ($(date -Is), load: $(cut -d' ' -f1-3 /proc/loadavg))"
}

{
    step "$run" 'PmemRegionBench.(bareCopy4k|copyPersist4k|copyFlush4kDrainPer128)$' -f 1 -wi 2 -i 5 -w 1s -r 1s
    export PCACHE_BENCH_SKIP_BUILD=1
    step "$run" CacheWriteBench -f 1 -wi 3 -i 8 -prof gc
    step "$run" CacheWriteBench.write2Threads -p fill=steady -p regionMiB=1024 -f 1 -wi 8 -i 8 -w 1s -r 1s
    step "$run" CacheReadBench -f 1 -wi 3 -i 5 -prof gc
    step "$run" CacheReadBench.readHitQd1 -p dataCrc=true -p extentKiB=4,1024 -f 1 -wi 3 -i 3
    step "$run" CacheWriteBench.writeQd1 -p dataCrc=true -f 1 -wi 3 -i 8
    step "$run" ReplayBench -p dataCrc=false,true -f 1 -wi 2 -i 5 -prof gc
    step "$run" --main org.pcache.bench.ExtentHeap 1000000
    step "$run" WritebackBench -f 1 -wi 1 -i 3
    step "$run" WritebackLatencyBench -f 1 -wi 3 -i 10
} 2>&1 | tee "$log"
