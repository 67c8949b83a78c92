#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang-14, AddressSanitizer + UndefinedBehaviorSanitizer)
# and runs each over its seed corpus (fuzz/corpus/TARGET) for SECONDS (default 10), printing
# libFuzzer's final statistics. Exit status 1 if any target found a crash, leak or UB report (the
# input is saved as BUILD/crashes/TARGET-*).
#   scripts/fuzz.sh                  every target 10 s (what the test suite runs)
#   scripts/fuzz.sh 1800             every target 30 minutes
#   scripts/fuzz.sh 600 torch_file   one target
#   HG_FUZZ_RUNS=1000000 scripts/fuzz.sh 1800   each target 1 M executions or 30 minutes,
#                                               whichever comes first
# HG_FUZZ_BUILD names the build folder (default build-fuzz); new corpus entries stay there.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
runs=()
[ -n "${HG_FUZZ_RUNS:-}" ] && runs=(-runs="$HG_FUZZ_RUNS")
shift || true
BUILD="${HG_FUZZ_BUILD:-build-fuzz}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(image boxes annotations_json annotations_h5 config predictions http torch_file checkpoint)
fi

CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD" -G Ninja -DHG_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

mkdir -p "$BUILD/crashes"
# One target; its exit status goes to BUILD/fuzz_TARGET.status. Each fuzzer is single-threaded,
# so as many run at once as there are cores, each for its full time.
run_target() {
  local t="$1" status=0
  mkdir -p "$BUILD/corpus/$t"
  # New inputs go to the first folder (the build's); the committed seeds are only read.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" OMP_NUM_THREADS=1 \
    LSAN_OPTIONS="suppressions=$PWD/fuzz/lsan.supp" \
    "$BUILD/fuzz/fuzz_$t" -max_total_time="$seconds" "${runs[@]}" -print_final_stats=1 -rss_limit_mb=2560 \
    -timeout=25 -artifact_prefix="$BUILD/crashes/$t-" "$BUILD/corpus/$t" "fuzz/corpus/$t" \
    2> "$BUILD/fuzz_$t.log" || status=$?
  echo "$status" > "$BUILD/fuzz_$t.status"
}
for t in "${targets[@]}"; do
  echo "== fuzz_$t: ${seconds} s" >&2
  run_target "$t" &
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
done
wait
failed=()
for t in "${targets[@]}"; do
  if [ "$(cat "$BUILD/fuzz_$t.status")" != 0 ]; then
    failed+=("$t")
    tail -40 "$BUILD/fuzz_$t.log" >&2
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done ' "$BUILD/fuzz_$t.log" >&2 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs in $BUILD/crashes/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no findings" >&2
