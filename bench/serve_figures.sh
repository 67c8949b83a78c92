#!/usr/bin/env bash
# Load and fault figures of `hourglass serve` with the 8-stack model (issue 13): 1, 4 and 16
# concurrent clients for 30 s each (16 clients three times), then 16 clients with 1,000 malformed
# requests mixed in, all to 127.0.0.1; and `hourglass bench`'s engine throughput for the same model
# between every two loads (the server idle), since this machine's speed drifts by up to a third
# over minutes: each load's ratio is to the mean of the benches just before and just after it,
# to the engine in the server's configuration (auto-auto at batch 8, its --max-batch), to auto-auto
# at batch 1 (bench's default) and to the fastest it measured (modes bf16-auto and auto-auto, at
# batch 1 and at batch 8). The server first gets 10 s of unrecorded load (its first forward passes
# run slower). Run it on a quiet machine:
#   bench/serve_figures.sh [BUILD_DIR]      (figures in BUILD_DIR/serve_figures/, summary printed)
set -euo pipefail
build=${1:-build}
out=$build/serve_figures
seconds=${SECONDS_PER_RUN:-30}
threads=$(nproc)
mkdir -p "$out"
rm -f "$out"/bench_*.json "$out"/bench_*.txt
py=/usr/bin/python3  # Debian's, with python3-torch for --make-model
model=$out/hourglass_s8_random.pt
[ -f "$model" ] || "$py" tools/serve_load.py --make-model "$model" --stacks 8
image=tests/data/mpii/images/005808361.jpg

benches=0
bench() {
  "$build/hourglass" --threads "$threads" bench --weights "$model" --no-torch --batch 8 --runs 5 \
    --modes bf16-auto auto-auto --json "$out/bench_$benches.json" > "$out/bench_$benches.txt"
  benches=$((benches + 1))
}

"$build/hourglass" --threads "$threads" serve --weights "$model" --port 0 --precision auto --max-batch 8 \
  --max-wait-ms 5 --max-body-mb 16 2> "$out/serve.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
port=
for _ in $(seq 600); do
  port=$(grep -o '127.0.0.1:[0-9]*/ (' "$out/serve.log" | head -1 | sed 's/127.0.0.1:\([0-9]*\).*/\1/') || true
  [ -n "$port" ] && break
  sleep 0.5
done
[ -n "$port" ] || { echo "the server did not start: $(cat "$out/serve.log")" >&2; exit 1; }
curl -s "http://127.0.0.1:$port/v1/model" > "$out/model.json"

"$py" tools/serve_load.py --port "$port" --image "$image" --clients 16 --seconds 10 \
  --query 'whole_image=1&flip=0' > /dev/null
: > "$out/load.jsonl"
load() {  # clients, malformed
  bench
  "$py" tools/serve_load.py --port "$port" --image "$image" --clients "$1" --malformed "$2" \
    --seconds "$seconds" --query 'whole_image=1&flip=0' --pid "$pid" | tee -a "$out/load.jsonl"
}
load 1 0
load 4 0
load 16 0
load 16 0
load 16 0
load 16 1000
bench

kill -TERM "$pid"
wait "$pid"
trap - EXIT
"$py" - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
model = json.load(open(f"{out}/model.json"))


def engine_ms(k):
    """Bench k's figures, ms per image: the server's own configuration (auto-auto at batch 8), and
    the fastest of every mode and batch it measured (with what that was)."""
    results = [r for r in json.load(open(f"{out}/bench_{k}.json"))["results"]
               if r["backend"] == "engine"]
    same = next(r["ms_per_image"] for r in results if r["mode"] == "auto-auto" and r["batch"] == 8)
    one = next(r["ms_per_image"] for r in results if r["mode"] == "auto-auto" and r["batch"] == 1)
    best = min((r for r in results if r["mode"] == "fastest"), key=lambda r: r["ms_per_image"])
    return same, one, best["ms_per_image"], f"{best['fastest_of']} batch {best['batch']}"


print(f"server precision {model['precision']}")
ratios16, ratios16_one, ratios16_fastest = [], [], []
for k, line in enumerate(open(f"{out}/load.jsonl")):
    r = json.loads(line)
    (same0, one0, best0, what0), (same1, one1, best1, what1) = engine_ms(k), engine_ms(k + 1)
    ratio = r["requests_per_s"] * (same0 + same1) / 2000
    ratio_one = r["requests_per_s"] * (one0 + one1) / 2000
    ratio_fastest = r["requests_per_s"] * (best0 + best1) / 2000
    if r["clients"] == 16 and r["malformed"] == 0:
        ratios16.append(ratio)
        ratios16_one.append(ratio_one)
        ratios16_fastest.append(ratio_fastest)
    print(f"clients {r['clients']:2d} malformed {r['malformed']:4d}: "
          f"{r['requests_per_s']:.2f} req/s = {ratio:.2f}x the engine in the server's configuration "
          f"(bench auto-auto batch 8: {same0:.1f} / {same1:.1f} ms/image before/after), "
          f"{ratio_one:.2f}x at batch 1, bench's default ({one0:.1f} / {one1:.1f}), "
          f"{ratio_fastest:.2f}x its fastest ({best0:.1f} [{what0}] / {best1:.1f} [{what1}]); "
          f"network {r['network_ms_per_crop']} ms/crop in batches of {r['mean_batch']}; "
          f"p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms; errors {r['good_errors']}; "
          f"malformed all 4xx {r['malformed_all_4xx']} {r['malformed_status']}; "
          f"RSS MiB {r['rss_mib']}; alive {r['alive']}")
print(f"16 clients: median {statistics.median(ratios16):.2f}x the engine in the server's "
      f"configuration ({', '.join(f'{x:.2f}' for x in ratios16)}), median "
      f"{statistics.median(ratios16_one):.2f}x at batch 1 "
      f"({', '.join(f'{x:.2f}' for x in ratios16_one)}), median "
      f"{statistics.median(ratios16_fastest):.2f}x its fastest "
      f"({', '.join(f'{x:.2f}' for x in ratios16_fastest)})")
PY
