#!/usr/bin/env python3
"""Cross-check of the CornerNet/CenterNet hourglass against CenterNet's own code, run by CTest
where Debian's python3-torch is present.

The reference is CenterNet's `large_hourglass.py`, `decode.py` and `utils.py`, vendored unmodified
in centernet/ (MIT licence, with CornerNet's BSD notice: centernet/LICENSE). Small networks built
by `exkp` with random weights and random batch-norm statistics are saved as CenterNet saves them
({'epoch', 'state_dict'} with DataParallel's `module.` prefix, or a bare state dict); `hourglass
forward`, on LibTorch and on the engine (f32, direct convolutions), must give every head of every
stack within 1e-4 of its largest magnitude and the detections of CenterNet's detectors (sigmoid of
hm and hm_hp on the last stack, then ctdet_decode or multi_pose_decode) within 1e-3. Where ONNX
Runtime is available (npm onnxruntime-node, as for crosscheck_export.py), `hourglass export`'s
ONNX of each gives every head within 1e-4 too. `hourglass info` must give the reference's
parameter count (Hourglass-104 with the ctdet and multi_pose heads included) and its
multiply-accumulates, counted here by hooks on every convolution.
Usage: centernet_crosscheck.py HOURGLASS_BINARY WORK_DIR
"""
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from centernet import decode, large_hourglass as lh  # noqa: E402
import mmpose_hourglass as mp  # noqa: E402
import onnx_runtime  # noqa: E402

CTDET = {"hm": 3, "wh": 2, "reg": 2}
MULTI_POSE = {"hm": 1, "wh": 2, "reg": 2, "hps": 10, "hm_hp": 5, "hp_offset": 2}


def hourglass(*args):
    return subprocess.run([binary, "--threads", "2", *args], check=True, capture_output=True,
                          text=True).stdout


def small_exkp(levels, dims, modules, stacks, cnv_dim, stem, heads):
    # HourglassNet's own arguments (strided make_hg_layer, no pooling), at small widths; `pre`
    # given because exkp's default stem is fixed at 128→256.
    pre = nn.Sequential(lh.convolution(7, 3, stem, stride=2),
                        lh.residual(3, stem, dims[0], stride=2))
    return lh.exkp(levels, stacks, dims, modules, heads, pre=pre, cnv_dim=cnv_dim,
                   make_pool_layer=lh.make_pool_layer, make_hg_layer=lh.make_hg_layer,
                   kp_layer=lh.residual)


def randomise(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def reference(model, x, heads, k):
    with torch.no_grad():
        outs = model(x)
        stacked = {h: torch.stack([o[h] for o in outs], 1) for h in heads}
        last = outs[-1]
        hm = last["hm"].sigmoid()
        if "hps" in heads:
            dets = decode.multi_pose_decode(hm, last["wh"], last["hps"].clone(), reg=last["reg"],
                                            hm_hp=last["hm_hp"].sigmoid(),
                                            hp_offset=last["hp_offset"], K=k)
        else:
            dets = decode.ctdet_decode(hm, last["wh"], reg=last["reg"], K=k)
    stacked["detections"] = dets
    return stacked


def conv_macs(model, x):
    total = [0]

    def hook(module, _, out):
        total[0] += module.weight.numel() * out.shape[2] * out.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0]  # per image: the hook counts output planes, not the batch


def info(*args):
    return json.loads(hourglass("info", "--json", *args))


def onnx_runtime_heads(weights, x, stem, extra):
    """Every head of `hourglass export`'s ONNX of `weights`, run in ONNX Runtime."""
    onnx_path = os.path.join(work, stem + ".onnx")
    hourglass("export", weights, onnx_path, "--size", str(x.shape[2]), *extra)
    return onnx_runtime.run(ort, onnx_path, x, work)


binary, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
ort = onnx_runtime.available()
# The engine in float32 with direct convolutions: the same arithmetic as LibTorch's, up to order.
BACKENDS = [("--backend", "torch"),
            ("--backend", "engine", "--precision", "f32", "--algorithm", "direct")]
configs = [
    # name, (levels, dims, modules, stacks, cnv_dim, stem, heads), wrapped, side, K
    ("ctdet_s1", (2, [8, 12, 16], [1, 2, 2], 1, 12, 8, CTDET), True, 64, 100),
    ("ctdet_s3", (1, [8, 8], [1, 1], 3, 8, 6, CTDET), False, 32, 20),
    ("pose_s2", (3, [8, 8, 12, 16], [2, 1, 1, 2], 2, 8, 6, MULTI_POSE), True, 64, 100),
    ("pose_s2_k16", (3, [8, 8, 12, 16], [2, 1, 1, 2], 2, 8, 6, MULTI_POSE), False, 64, 16),
]
worst_head, worst_det = 0.0, 0.0
for i, (name, shape, wrapped, side, k) in enumerate(configs):
    model = randomise(small_exkp(*shape), 300 + i)
    state = model.state_dict()
    ckpt = {"epoch": 7, "state_dict": {"module." + n: t for n, t in state.items()}} if wrapped \
        else state
    weights = os.path.join(work, name + ".pth")
    torch.save(ckpt, weights)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(400 + i))
    torch.save({"input": x}, os.path.join(work, name + ".in.pt"))
    ref = reference(model, x, shape[6], k)
    for backend in BACKENDS:
        out = os.path.join(work, f"{name}.{backend[1]}.out.pt")
        hourglass("forward", *backend, "--weights", weights, "--input",
                  os.path.join(work, name + ".in.pt"), "--output", out, "--top-k", str(k))
        got = torch.load(out, weights_only=True)
        assert set(got) == set(ref), (name, sorted(got), sorted(ref))
        for head, r in ref.items():
            assert got[head].shape == r.shape, (name, head, got[head].shape, r.shape)
            if head == "detections":
                err = (got[head] - r).abs().max().item()
                worst_det = max(worst_det, err)
                assert err <= 1e-3, f"{name} {backend} detections: max |Δ| {err}"
            else:
                err = ((got[head] - r).abs().max() / r.abs().max()).item()
                worst_head = max(worst_head, err)
                assert err <= 1e-4, f"{name} {backend} {head}: relative max |Δ| {err}"
    for extra in ([], ["--no-fold", "--opset", "11"]) if ort is not None else []:
        got = onnx_runtime_heads(weights, x, name, extra)
        for head in shape[6]:
            r = ref[head]
            err = ((got[head].view(r.shape) - r).abs().max() / r.abs().max()).item()
            worst_head = max(worst_head, err)
            assert err <= 1e-4, f"{name} ONNX {extra} {head}: relative max |Δ| {err}"
    described = info("--weights", weights, "--size", str(side))
    params = sum(p.numel() for p in model.parameters())
    assert described["parameters"] == params, (name, described["parameters"], params)
    assert described["macs"] == conv_macs(model, x), (name, described["macs"])
    print(f"{name}: heads and detections match; {params} parameters")

# MMPose's top-down HourglassNet + CPMHead (python/mmpose_hourglass.py, a transcription: see there),
# saved as mmengine saves a checkpoint; the one head is `heatmaps`, every stack's.
mmpose_configs = [
    # name, (levels, stacks, dims, modules, feat_channel, stem, joints), side
    ("mmpose_s1", (2, 1, [8, 12, 16], [1, 2, 2], 10, 6, 5), 64),
    ("mmpose_s2", (1, 2, [8, 8], [2, 1], 8, 6, 17), 32),
]
for i, (name, (levels, stacks, dims, modules, feat, stem, joints), side) in enumerate(mmpose_configs):
    model = randomise(mp.TopdownPoseEstimator(mp.HourglassNet(levels, stacks, dims, modules, feat, stem),
                                              mp.CPMHead(feat, joints, stacks)), 500 + i)
    weights = os.path.join(work, name + ".pth")
    torch.save({"meta": {"epoch": 210, "mmpose_version": "1.3.2"}, "state_dict": model.state_dict()},
               weights)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(600 + i))
    torch.save({"input": x}, os.path.join(work, name + ".in.pt"))
    with torch.no_grad():
        ref = torch.stack(model(x), 1)
    for backend in BACKENDS:
        out = os.path.join(work, f"{name}.{backend[1]}.out.pt")
        hourglass("forward", *backend, "--weights", weights, "--input",
                  os.path.join(work, name + ".in.pt"), "--output", out)
        got = torch.load(out, weights_only=True)
        assert set(got) == {"heatmaps"}, (name, sorted(got))
        err = ((got["heatmaps"] - ref).abs().max() / ref.abs().max()).item()
        worst_head = max(worst_head, err)
        assert err <= 1e-4, f"{name} {backend[1]} heatmaps: relative max |Δ| {err}"
    if ort is not None:
        onnx_got = onnx_runtime_heads(weights, x, name, [])["heatmaps"].view(ref.shape)
        err = ((onnx_got - ref).abs().max() / ref.abs().max()).item()
        worst_head = max(worst_head, err)
        assert err <= 1e-4, f"{name} ONNX heatmaps: relative max |Δ| {err}"
    described = info("--weights", weights, "--size", str(side))
    # A one-stack HourglassNet holds an `inters.0` its forward never uses (MMPose's ResLayer always
    # builds a block): the import leaves it out, so the count leaves it out too.
    params = sum(p.numel() for n, p in model.named_parameters()
                 if not (n.startswith("backbone.inters.") and int(n.split(".")[2]) >= stacks - 1))
    assert described["parameters"] == params, (name, described["parameters"], params)
    assert described["macs"] == conv_macs(model, x), (name, described["macs"])
    print(f"{name}: heatmaps match; {params} parameters")

for heads_name, heads in [("ctdet", {"hm": 80, "wh": 2, "reg": 2}),
                          ("multi_pose", {"hm": 1, "wh": 2, "reg": 2, "hps": 34, "hm_hp": 17,
                                          "hp_offset": 2})]:
    model = lh.get_large_hourglass_net(None, heads, None).eval()
    params = sum(p.numel() for p in model.parameters())
    described = info("--arch", "hourglass104", "--heads", heads_name)
    assert described["parameters"] == params, (heads_name, described["parameters"], params)
    # Every layer's output scales with the input's area: the MACs at 512² are 16× those at 128².
    macs = 16 * conv_macs(model, torch.zeros(1, 3, 128, 128))
    assert described["macs"] == macs, (heads_name, described["macs"], macs)
    print(f"hourglass104 {heads_name}: {params} parameters, {macs / 1e9:.2f} GMAC at 512²")
    del model
if ort is None:
    print("ONNX Runtime (npm onnxruntime-node) not found: the ONNX Runtime check is skipped")
print(f"passed (worst head error {worst_head:.2e} relative, worst detection error {worst_det:.2e})")
