#!/usr/bin/env bash
# Fuzzes one Jazzer target for longer than the build does (docs/fuzzing.md lists the targets):
#   bench/fuzz.sh TARGET [SECONDS]       e.g. bench/fuzz.sh CacheImageFuzzTest 600     (default 300 s)
# The target's committed inputs (src/test/resources/.../<TARGET>Inputs/) are replayed first; what the fuzzer learns
# stays in <module>/.cifuzz-corpus/ (not committed) for the next run. A finding fails the run and is written into the
# inputs directory as crash-<sha1>: fix the code, rename the file after what it found, and commit it.
# Prints the executions, coverage and findings; the full log goes to target/fuzz-<TARGET>.log of the module.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
. bin/jdk.sh
pcache_select_jdk
target=${1:?usage: bench/fuzz.sh TARGET [SECONDS] (a class annotated with @FuzzTest, e.g. ReplyReaderFuzzTest)}
seconds=${2:-300}
source=$(find core nbd server -path "*/src/test/java/*" -name "$target.java" | head -1)
[ -n "$source" ] || { echo "fuzz: no test class $target under core/, nbd/ or server/" >&2; exit 2; }
module=${source%%/*}
log="$here/$module/target/fuzz-$target.log"
mkdir -p "$module/target"
echo "fuzz: $target in $module for $seconds s (log $log)"
status=0
mvn -B -o -pl "$module" -am -Dtest="$target" -Dpcache.fuzz.duration="${seconds}s" \
    -Dsurefire.failIfNoSpecifiedTests=false test >"$log" 2>&1 || status=$?
grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|INFO: +[0-9]+ files found in .*Inputs' "$log" || true
grep -E 'FuzzTestFinding|== Java Exception|crash-[0-9a-f]{40}' "$log" | head -20 || true
[ "$status" -eq 0 ] && echo "fuzz: $target: no finding" || echo "fuzz: $target: FAILED (exit $status; see $log)"
exit "$status"
