#!/usr/bin/env python3
"""Latency of ONNX Runtime on hourglass's ONNX export against ONNX Runtime on PyTorch's own
torch.onnx export of the same network, and of hourglass's engine and LibTorch, in one run.

The network is the reference PoseNet of tools/make_fixtures.py (8 stacks, 256 features by
default) with random weights; hourglass exports it from its state_dict, PyTorch from the module.
With --arch hourglass104 it is CenterNet's own Hourglass-104 with the ctdet heads (the vendored
tests/python/centernet/large_hourglass.py, random weights, saved as CenterNet saves it), and
PyTorch's export is left out (--size 512 is CenterNet's).
Needs Debian's python3-torch and npm onnxruntime-node (npm install --prefix tools --ignore-scripts).
Usage: /usr/bin/python3 tools/onnx_latency.py HOURGLASS WORK_DIR [--stacks 8] [--features 256]
           [--arch hourglass104] [--size 256] [--runs 10] [--rounds 2] [--threads 2]
"""
import argparse
import json
import os
import subprocess
import sys

import torch

tools = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, tools)
import make_fixtures as mf  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("hourglass")
p.add_argument("work")
p.add_argument("--stacks", type=int, default=8)
p.add_argument("--features", type=int, default=256)
p.add_argument("--arch", choices=["posenet", "hourglass104"], default="posenet")
p.add_argument("--size", type=int, default=256)
p.add_argument("--runs", type=int, default=10)
p.add_argument("--rounds", type=int, default=2)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
os.makedirs(a.work, exist_ok=True)
path = lambda name: os.path.join(a.work, name)  # noqa: E731

torch.manual_seed(0)
x = torch.rand(1, 3, a.size, a.size)
x.numpy().tofile(path("x.f32"))
if a.arch == "hourglass104":
    sys.path.insert(0, os.path.join(tools, "..", "tests", "python"))
    from centernet import large_hourglass as lh  # noqa: E402
    model = lh.get_large_hourglass_net(None, {"hm": 80, "wh": 2, "reg": 2}, None).eval()
    torch.save({"epoch": 1, "state_dict": model.state_dict()}, path("model.pt"))
    title = "CenterNet Hourglass-104 (ctdet heads)"
else:
    model = mf.PoseNet(a.stacks, a.features, 16)
    mf.randomise(model, 0)
    torch.save(model.state_dict(), path("model.pt"))
    torch.onnx.export(model, x, path("pytorch.onnx"), opset_version=13, input_names=["image"],
                      output_names=["heatmaps"],
                      dynamic_axes={"image": {0: "batch"}, "heatmaps": {0: "batch"}},
                      do_constant_folding=True)
    title = f"PoseNet({a.stacks}, {a.features}, 16)"
del model
hg = [a.hourglass, "--threads", str(a.threads)]
subprocess.run(hg + ["export", path("model.pt"), path("hourglass.onnx"), "--size", str(a.size)],
               check=True, stdout=subprocess.DEVNULL)
subprocess.run(hg + ["convert", path("model.pt"), path("model.hg")], check=True,
               stdout=subprocess.DEVNULL)

env = dict(os.environ)
env["NODE_PATH"] = os.pathsep.join(filter(None, [env.get("NODE_PATH"), os.path.join(tools, "node_modules")]))


def ort(model_path):
    out = subprocess.run(["node", os.path.join(tools, "ort_run.js"), model_path, path("x.f32"),
                          f"1,3,{a.size},{a.size}", path("y.f32"), "--runs", str(a.runs),
                          "--threads", str(a.threads)], check=True, env=env, capture_output=True,
                         text=True).stdout
    return json.loads(out)["median_ms"]


# Alternating rounds: load that comes and goes on a shared machine then slows both alike.
ours, theirs = [], []
for _ in range(a.rounds):
    ours.append(ort(path("hourglass.onnx")))
    if a.arch == "posenet":
        theirs.append(ort(path("pytorch.onnx")))
subprocess.run(hg + ["bench", "--weights", path("model.hg"), "--size", str(a.size), "--batch", "1",
                     "--runs", str(a.runs), "--json", path("bench.json")], check=True,
               stdout=subprocess.DEVNULL)
bench = json.load(open(path("bench.json")))
results = {"onnxruntime, hourglass export": min(ours)}
if theirs:
    results["onnxruntime, torch.onnx export"] = min(theirs)
for r in bench["results"]:
    if r["batch"] == 1 and r["mode"] != "fastest":
        results[f"{r['backend']} {r['mode']}"] = r["ms_per_image"]
print(f"{title}, input 1×3×{a.size}×{a.size}, {a.threads} threads, "
      f"median of {a.runs} runs (best of {a.rounds} rounds for ONNX Runtime)")
base = results["onnxruntime, hourglass export"]
for name, ms in results.items():
    print(f"  {name:34s} {ms:9.1f} ms   {ms / base:5.2f}× ours-in-ORT")
json.dump({"results_ms": results, "args": vars(a)}, open(path("latency.json"), "w"), indent=2)
