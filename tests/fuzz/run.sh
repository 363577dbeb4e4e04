#!/usr/bin/env bash
# Builds the manifest fuzzer with clang++ (libFuzzer, ASan, UBSan) and runs it for a bounded time.
#   tests/fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
# SECONDS defaults to 60 (or $PGC_FUZZ_SECONDS). The build dir is $PGC_FUZZ_BUILD_DIR, default
# build-fuzz/ in the source tree; it is configured when absent. New inputs go to
# $PGC_FUZZ_BUILD_DIR/corpus (the seed corpus tests/fuzz/corpus/ is only read); a crash, a leak,
# a slow input or more than 1 GiB of memory leaves crash-*/leak-*/timeout-*/oom-* in
# $PGC_FUZZ_BUILD_DIR/artifacts/ and makes this script exit non-zero. $PGC_FUZZ_CXX picks the
# compiler (default clang++), $PGC_FUZZ_LAUNCHER a compiler launcher such as ccache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
seconds=${1:-${PGC_FUZZ_SECONDS:-60}}
shift || true
build=${PGC_FUZZ_BUILD_DIR:-$source_dir/build-fuzz}
jobs=${PGC_FUZZ_BUILD_JOBS:-2}

mkdir -p "$build"
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$source_dir" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="${PGC_FUZZ_CXX:-clang++}" -DCMAKE_CXX_COMPILER_LAUNCHER="${PGC_FUZZ_LAUNCHER:-}" \
    -DPGC_FUZZ=ON >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 2; }
fi
cmake --build "$build" --target manifest_fuzzer -j "$jobs"

mkdir -p "$build/corpus" "$build/artifacts"
# Memory: libFuzzer's own -rss_limit_mb report starts with a heap profile that stops the world
# with ptrace, which hangs (or takes many minutes) in containers, and then no input is saved. So
# its RSS limit is off and ASan's hard_rss_limit_mb does the job: it reports, and libFuzzer's
# death callback writes the input as crash-*. -malloc_limit_mb still catches one huge malloc
# (oom-*). -error_exitcode=1: libFuzzer's default, 77, is what CTest counts as "skipped".
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:hard_rss_limit_mb=1024:malloc_context_size=20}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzzing for ${seconds}s (corpus $build/corpus, seeds $here/corpus)"
# timeout: a hang the per-input -timeout cannot catch still ends; the run is killed 120 s after
# its time is up and counts as a failure.
timeout --signal=KILL "$((seconds + 120))" "$build/tests/fuzz/manifest_fuzzer" "$build/corpus" "$here/corpus" \
  -max_total_time="$seconds" -rss_limit_mb=0 -malloc_limit_mb=1024 -max_len=65536 -timeout=5 \
  -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$build/artifacts/" -print_final_stats=1 "$@"
