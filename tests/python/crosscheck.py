#!/usr/bin/env python3
"""Cross-check of hourglass against PyTorch, run by CTest when Debian's python3-torch is present.

1. Files hourglass writes load in Python with torch.load(weights_only=True).
2. Checkpoints of configurations generated here and now (unseen by the C++ tests) convert and
   run in hourglass with the reference implementations' output, within 1e-4 · max|ref|.
Usage: crosscheck.py HOURGLASS_BINARY WORK_DIR
"""
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import make_fixtures as mf  # noqa: E402


def run(*args):
    subprocess.run([hourglass, "--threads", "2", *args], check=True, stdout=subprocess.DEVNULL)


def load(path):
    return torch.load(path, weights_only=True)


hourglass, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
configs = [
    ("posenet_s2_f24_j9.pt", mf.PoseNet(2, 24, 9), lambda m: m.state_dict(), 64),
    ("posenet_s4_f8_d2.pt", mf.PoseNet(4, 8, 16, depth=2), lambda m: {"state_dict": {"model.module." + k: v for k, v in m.state_dict().items()}}, 64),
    ("bearpaw_s2_b3_f16.pth.tar", mf.HourglassNet(2, 3, 16, num_feats=8), lambda m: {"state_dict": {"module." + k: v for k, v in m.state_dict().items()}, "epoch": 0}, 64),
    ("bearpaw_s1_b1_f48_j5.pth.tar", mf.HourglassNet(1, 1, 5, num_feats=24), lambda m: {"state_dict": m.state_dict()}, 128),
]
worst = 0.0
for i, (name, model, wrap, side) in enumerate(configs):
    mf.write(work, name, model, wrap, side, 100 + i)
    stem = name.split(".")[0]
    native = os.path.join(work, stem + ".hg")
    out = os.path.join(work, stem + ".out.pt")
    run("convert", os.path.join(work, name), native)
    # float32: the cross-check is of the arithmetic, which auto precision may round to bf16.
    run("forward", "--precision", "f32", "--weights", native, "--input",
        os.path.join(work, stem + ".io.pt"), "--output", out)
    ref = load(os.path.join(work, stem + ".io.pt"))["output"]
    got = load(out)["output"]
    ckpt = load(native)  # the native checkpoint is a plain torch.save dict too
    assert ckpt["format"] == "hourglass" and len(ckpt["state_dict"]) > 0
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    worst = max(worst, err)
    print(f"{name}: relative max |Δ| {err:.2e}")
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert err <= 1e-4, f"{name}: {err}"
print(f"1 passed, 0 failed (worst relative error {worst:.2e})")
