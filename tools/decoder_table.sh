#!/usr/bin/env bash
# The decoder table of docs/benchmarks.md: trains two demo models for the same number of steps (the default
# unbiased targets, and target_encoding=rounded), then measures every decoding and test-time
# option on both with bench/decoder_table.cpp (PCKh per stack, OKS AP, ms per person, one run).
#
# usage: tools/decoder_table.sh [BUILD_DIR] [STEPS]      (default: build 1500)
#   OUT=runs/decoders  run folders and table.json; existing models are reused (delete to retrain)
#   THREADS=2          compute threads of training and measurement
# The build needs the bench tools: cmake -DHG_BUILD_BENCH=ON, target hg_decoder_table.
set -euo pipefail
build=${1:-build}
steps=${2:-1500}
out=${OUT:-runs/decoders}
threads=${THREADS:-2}
# The demo recipe's schedule (warm-up, cosine decay) over a budget of steps instead of minutes.
for encoding in unbiased rounded; do
  if [ ! -f "$out/$encoding/last.hg" ]; then
    OMP_NUM_THREADS=$threads "$build/hourglass" --threads "$threads" train --recipe demo \
      --run-dir "$out/$encoding" --set max_minutes=0 --set max_steps="$steps" \
      --set target_encoding="$encoding"
  fi
done
OMP_NUM_THREADS=$threads "$build/bench/hg_decoder_table" --oracle "$out/unbiased/last.hg" \
  "$out/rounded/last.hg" --threads "$threads" --json "$out/table.json"
