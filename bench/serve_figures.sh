#!/usr/bin/env bash
# Load and fault figures of `hourglass serve` with the 8-stack model (issue 13): 1, 4 and 16
# concurrent clients for 30 s each, then 16 clients with 1,000 malformed requests mixed in, all to
# 127.0.0.1; and `hourglass bench`'s engine throughput for the same model in the same run, before
# the loads and again after them (this machine's speed drifts by several per cent over minutes),
# so that the server's requests/s can be read as a ratio of it. The server first gets 10 s of
# unrecorded load (its first forward passes run slower). Run it on a quiet machine:
#   bench/serve_figures.sh [BUILD_DIR]      (figures in BUILD_DIR/serve_figures/, summary printed)
set -euo pipefail
build=${1:-build}
out=$build/serve_figures
seconds=${SECONDS_PER_RUN:-30}
threads=$(nproc)
mkdir -p "$out"
py=/usr/bin/python3  # Debian's, with python3-torch for --make-model
model=$out/hourglass_s8_random.pt
[ -f "$model" ] || "$py" tools/serve_load.py --make-model "$model" --stacks 8
image=tests/data/mpii/images/005808361.jpg

bench() {
  "$build/hourglass" --threads "$threads" bench --weights "$model" --no-torch --batch 1 --runs 5 \
    --json "$out/bench_$1.json" > "$out/bench_$1.txt"
}
bench before

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
for clients in 1 4 16; do
  "$py" tools/serve_load.py --port "$port" --image "$image" --clients "$clients" \
    --seconds "$seconds" --query 'whole_image=1&flip=0' --pid "$pid" | tee -a "$out/load.jsonl"
done
"$py" tools/serve_load.py --port "$port" --image "$image" --clients 16 --seconds "$seconds" \
  --malformed 1000 --query 'whole_image=1&flip=0' --pid "$pid" | tee -a "$out/load.jsonl"

kill -TERM "$pid"
wait "$pid"
trap - EXIT
bench after
"$py" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
model = json.load(open(f"{out}/model.json"))
ms = []
for when in ("before", "after"):
    bench = json.load(open(f"{out}/bench_{when}.json"))
    fastest = {r["mode"]: r for r in bench["results"] if r["backend"] == "engine"}["fastest"]
    ms.append(fastest["ms_per_image"])
    print(f"bench {when} the loads: fastest engine mode {fastest['fastest_of']}: "
          f"{fastest['ms_per_image']:.1f} ms/image = {1000 / fastest['ms_per_image']:.2f} images/s")
engine_ms = sum(ms) / len(ms)
print(f"server precision {model['precision']}; engine throughput (mean of both) "
      f"{1000 / engine_ms:.2f} images/s")
for line in open(f"{out}/load.jsonl"):
    r = json.loads(line)
    print(f"clients {r['clients']:2d} malformed {r['malformed']:4d}: "
          f"{r['requests_per_s']:.2f} req/s = "
          f"{r['requests_per_s'] * engine_ms / 1000:.2f}x bench; "
          f"p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms; errors {r['good_errors']}; "
          f"malformed all 4xx {r['malformed_all_4xx']} {r['malformed_status']}; "
          f"RSS MiB {r['rss_mib']}; alive {r['alive']}")
PY
