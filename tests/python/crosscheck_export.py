#!/usr/bin/env python3
"""Cross-check of `hourglass export` against the reference implementations, run by CTest where
Debian's python3-torch is present.

1. posenet / bearpaw exports load with torch.load(weights_only=True) into the reference modules of
   tools/make_fixtures.py with load_state_dict(strict=True) (no missing or unexpected keys), and
   reproduce hourglass's own output on them within 1e-4 · max|out| (also across ports: a posenet
   checkpoint exported as bearpaw).
2. safetensors exports are files the format's layout describes (header parsed here by hand).
3. Where ONNX Runtime is available (npm onnxruntime-node, found through NODE_PATH or
   tools/node_modules), the ONNX export run by tools/ort_run.js matches within 1e-4 too.
Usage: crosscheck_export.py HOURGLASS_BINARY WORK_DIR
"""
import json
import os
import struct
import subprocess
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
tools = os.path.join(here, "..", "..", "tools")
sys.path.insert(0, tools)
import make_fixtures as mf  # noqa: E402
sys.path.insert(0, here)
import onnx_runtime  # noqa: E402


def run(*args):
    subprocess.run([hourglass, "--threads", "2", *args], check=True, stdout=subprocess.DEVNULL)


def load(path):
    return torch.load(path, weights_only=True)


def relative_error(got, ref):
    assert got.shape == ref.shape, (got.shape, ref.shape)
    return ((got - ref).abs().max() / ref.abs().max()).item()


def ours(weights, io_path, stem):
    out = os.path.join(work, stem + ".ours.pt")
    run("forward", "--precision", "f32", "--weights", weights, "--input", io_path, "--output", out)
    return load(out)["output"]


hourglass, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
ort = onnx_runtime.available()
worst = 0.0
# (name, reference module, export format, module the export loads into)
configs = [
    ("posenet_s2_f16_j9", mf.PoseNet(2, 16, 9), "posenet", lambda: mf.PoseNet(2, 16, 9)),
    ("bearpaw_s2_b2_f8_j5", mf.HourglassNet(2, 2, 5, num_feats=8), "bearpaw",
     lambda: mf.HourglassNet(2, 2, 5, num_feats=8)),
    ("bearpaw_s1_b1_f32", mf.HourglassNet(1, 1, 16, num_feats=16), "bearpaw",
     lambda: mf.HourglassNet(1, 1, 16, num_feats=16)),
]
for i, (stem, model, fmt, fresh) in enumerate(configs):
    mf.write(work, stem + ".pt", model, lambda m: m.state_dict(), 64, 200 + i)
    src, io_path = os.path.join(work, stem + ".pt"), os.path.join(work, stem + ".io.pt")
    io = load(io_path)

    exported = os.path.join(work, stem + "." + fmt + ".pth")
    run("export", src, exported, "--format", fmt)
    target = fresh()
    result = target.load_state_dict(load(exported), strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    target.eval()
    with torch.no_grad():
        theirs = target(io["input"])
    err = relative_error(theirs, ours(exported, io_path, stem))
    err_ref = relative_error(theirs, io["output"])
    worst = max(worst, err, err_ref)
    print(f"{stem} -> {fmt}: {len(target.state_dict())} keys, none missing or unexpected; "
          f"relative max |Δ| vs hourglass {err:.2e}, vs the original module {err_ref:.2e}")
    assert err <= 1e-4 and err_ref <= 1e-4, (stem, err, err_ref)

    st = os.path.join(work, stem + ".safetensors")
    run("export", src, st)
    with open(st, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    assert meta["format"] == "hourglass", meta
    assert json.loads(meta["architecture"])["joints"] == io["output"].shape[2], meta
    assert max(v["data_offsets"][1] for v in header.values()) == len(data)
    err = relative_error(ours(st, io_path, stem + ".st"), io["output"])
    worst = max(worst, err)
    print(f"{stem} -> safetensors: {len(header)} tensors, relative max |Δ| {err:.2e}")
    assert err <= 1e-4, (stem, err)

    if ort is None:
        continue
    for extra in ([], ["--no-fold", "--opset", "11"]):
        onnx_path = os.path.join(work, stem + ".onnx")
        run("export", src, onnx_path, "--size", "64", *extra)
        got = onnx_runtime.run(ort, onnx_path, io["input"], work)["heatmaps"].view(io["output"].shape)
        err = relative_error(got, io["output"])
        worst = max(worst, err)
        print(f"{stem} -> ONNX {' '.join(extra) or '(default)'} in ONNX Runtime: relative max |Δ| {err:.2e}")
        assert err <= 1e-4, (stem, err)
if ort is None:
    print("ONNX Runtime (npm onnxruntime-node) not found: the ONNX Runtime check is skipped")
print(f"1 passed, 0 failed (worst relative error {worst:.2e})")
