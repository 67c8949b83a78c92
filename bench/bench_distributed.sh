#!/usr/bin/env bash
# Training samples/s of 1 process × 2 threads against 2 Gloo ranks × 1 thread (`--nproc 2`) on
# the same machine: 2-stack network, 256×256, global batch 16, steps 3..STEPS of each run (the
# first two warm up), and the share of step time spent waiting for gradients after backward
# (communication not hidden by it). Usage: bench/bench_distributed.sh [build/hourglass] [STEPS]
set -euo pipefail
bin=${1:-build/hourglass}
steps=${2:-12}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(train --recipe paper --set model.stacks=2 --set batch_size=16 --set augment=none
        --set dataset=synthetic:2000:1 --set val_dataset= --set max_steps="$steps"
        --set loader_threads=1)
"$bin" "${common[@]}" --set threads=2 --run-dir "$out/w1" > /dev/null 2>&1
"$bin" "${common[@]}" --set threads=1 --nproc 2 --run-dir "$out/w2" > /dev/null 2>&1
python3 - "$out" <<'PY'
import json, sys
def rate(run):
    steps = [json.loads(l) for l in open(f"{sys.argv[1]}/{run}/log.jsonl") if '"step"' in l]
    steps = [s for s in steps if s["type"] == "step"]
    # samples_per_s is cumulative over the epoch: recover elapsed time per step line.
    t = [s["step"] * 16 / s["samples_per_s"] for s in steps]
    a, b = 1, len(steps) - 1  # after step 2 .. last
    sps = (steps[b]["step"] - steps[a]["step"]) * 16 / (t[b] - t[a])
    comm = steps[b].get("comm_wait_s")
    return sps, (None if comm is None else comm / t[b])
w1, _ = rate("w1")
w2, comm = rate("w2")
print(f"1 process x 2 threads: {w1:.2f} samples/s")
print(f"2 ranks x 1 thread:    {w2:.2f} samples/s ({w2 / w1:.2f}x), "
      f"gradient wait after backward {100 * comm:.1f}% of the time")
PY
