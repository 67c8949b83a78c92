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

CornerNet's checkpoints load as features: small networks built by CornerNet's own `kp` (vendored
unmodified in cornernet/, BSD licence; its compiled corner pooling replaced by a stand-in, see
cornernet/README.md), saved as CornerNet saves them (a bare state dict under DummyModule's
`module.`), must give `features` (every stack's cnv, taken by hooks) within 1e-4 on both
backends and in ONNX Runtime; asking for detections must fail, saying why; `info --arch
cornernet` must give the parameter count of CornerNet's Hourglass-104 (its `model`).
Usage: centernet_crosscheck.py HOURGLASS_BINARY WORK_DIR
"""
import json
import os
import subprocess
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "cornernet"))
from centernet import decode, large_hourglass as lh  # noqa: E402
from models import CornerNet as cn  # noqa: E402
import mmpose_hourglass as mp  # noqa: E402
from centernet_fixtures import randomise, small_exkp  # noqa: E402
import onnx_runtime  # noqa: E402

CTDET = {"hm": 3, "wh": 2, "reg": 2}
MULTI_POSE = {"hm": 1, "wh": 2, "reg": 2, "hps": 10, "hm_hp": 5, "hp_offset": 2}


def hourglass(*args):
    return subprocess.run([binary, "--threads", "2", *args], check=True, capture_output=True,
                          text=True).stdout


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


def conv_macs(model, x, run=None, skip=()):
    """Multiply-accumulates per image of the convolutions `run` (default: model(x)) calls, but for
    those under a module whose name starts with one of `skip`."""
    total = [0]

    def hook(module, _, out):
        total[0] += module.weight.numel() * out.shape[2] * out.shape[3]

    handles = [m.register_forward_hook(hook) for n, m in model.named_modules()
               if isinstance(m, nn.Conv2d) and not n.startswith(tuple(skip))]
    with torch.no_grad():
        (run or model)(x)
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


def relative_error(got, ref, what):
    err = ((got - ref).abs().max() / ref.abs().max()).item()
    assert err <= 1e-4, f"{what}: relative max |Δ| {err}"
    return err


def check_single_output(name, weights, x, key, ref, backends, onnx):
    """`hourglass forward` on `backends` (and, with `onnx`, the ONNX export in ONNX Runtime) must
    give one output, `key`, within 1e-4 of `ref` (relative to its largest magnitude); returns the
    worst relative error."""
    inp = os.path.join(work, name + ".in.pt")
    torch.save({"input": x}, inp)
    worst = 0.0
    for backend in backends:
        out = os.path.join(work, f"{name}.{backend[1]}.out.pt")
        hourglass("forward", *backend, "--weights", weights, "--input", inp, "--output", out)
        got = torch.load(out, weights_only=True)
        assert set(got) == {key}, (name, sorted(got))
        worst = max(worst, relative_error(got[key], ref, f"{name} {backend[1]} {key}"))
    if onnx and ort is not None:
        got = onnx_runtime_heads(weights, x, name, [])[key].view(ref.shape)
        worst = max(worst, relative_error(got, ref, f"{name} ONNX {key}"))
    return worst


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
    with torch.no_grad():
        ref = torch.stack(model(x), 1)
    worst_head = max(worst_head, check_single_output(name, weights, x, "heatmaps", ref, BACKENDS,
                                                     True))
    described = info("--weights", weights, "--size", str(side))
    # A one-stack HourglassNet holds an `inters.0` its forward never uses (MMPose's ResLayer always
    # builds a block): the import leaves it out, so the count leaves it out too.
    params = sum(p.numel() for n, p in model.named_parameters()
                 if not (n.startswith("backbone.inters.") and int(n.split(".")[2]) >= stacks - 1))
    assert described["parameters"] == params, (name, described["parameters"], params)
    assert described["macs"] == conv_macs(model, x), (name, described["macs"])
    print(f"{name}: heatmaps match; {params} parameters")

# CornerNet's kp at small widths; its heads and corner modules are kept, not run: the output is
# every stack's features (cnv), and neither they nor their convolutions count in the MACs.
CORNER = ("tl_", "br_")


def small_kp(levels, dims, modules, stacks, cnv_dim, stem, classes):
    pre = nn.Sequential(cn.convolution(7, 3, stem, stride=2),
                        cn.residual(3, stem, dims[0], stride=2))
    return cn.kp(levels, stacks, dims, modules, classes, pre=pre, cnv_dim=cnv_dim,
                 make_tl_layer=cn.make_tl_layer, make_br_layer=cn.make_br_layer,
                 make_pool_layer=cn.make_pool_layer, make_hg_layer=cn.make_hg_layer,
                 kp_layer=cn.residual)


def kp_train(model):
    """kp's training forward (every stack's heads), which the test forward would decode."""
    return lambda x: model(x, torch.zeros(x.shape[0], 1, dtype=torch.long),
                           torch.zeros(x.shape[0], 1, dtype=torch.long))


def kp_features(model, x):
    cnvs = []
    handles = [c.register_forward_hook(lambda m, i, out: cnvs.append(out.clone()))
               for c in model.cnvs]
    with torch.no_grad():
        kp_train(model)(x)
    for h in handles:
        h.remove()
    return torch.stack(cnvs, 1)


cornernet_configs = [
    # name, (levels, dims, modules, stacks, cnv_dim, stem, classes), side, everything checked
    # (the second, for its other shape only, skips the engine, the refusal and ONNX: CI's time)
    ("cornernet_s2", (2, [8, 12, 16], [1, 2, 2], 2, 10, 6, 3), 64, True),
    ("cornernet_s1", (1, [8, 8], [2, 1], 1, 8, 6, 2), 32, False),
]
for i, (name, shape, side, full) in enumerate(cornernet_configs):
    model = randomise(small_kp(*shape), 700 + i)
    weights = os.path.join(work, name + ".pkl")
    torch.save({"module." + n: t for n, t in model.state_dict().items()}, weights)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(800 + i))
    ref = kp_features(model, x)
    worst_head = max(worst_head, check_single_output(name, weights, x, "features", ref,
                                                     BACKENDS if full else BACKENDS[:1], full))
    if full:
        refused = subprocess.run([binary, "forward", "--weights", weights, "--input",
                                  os.path.join(work, name + ".in.pt"), "--output",
                                  os.path.join(work, name + ".dets.pt"), "--top-k", "5"],
                                 capture_output=True, text=True)
        assert refused.returncode == 1 and "corner heads are not decoded" in refused.stderr, \
            (refused.returncode, refused.stderr)
    described = info("--weights", weights, "--size", str(side))
    params = sum(p.numel() for p in model.parameters())
    assert described["parameters"] == params, (name, described["parameters"], params)
    assert described["head_style"] == "cornernet", described
    macs = conv_macs(model, x, kp_train(model), CORNER)
    assert described["macs"] == macs, (name, described["macs"], macs)
    print(f"{name}: features match; {params} parameters")

model = cn.model(None).eval()
params = sum(p.numel() for p in model.parameters())
described = info("--arch", "cornernet")
assert described["parameters"] == params, ("cornernet", described["parameters"], params)
macs = 16 * conv_macs(model, torch.zeros(1, 3, 128, 128), kp_train(model), CORNER)
assert described["macs"] == macs, ("cornernet", described["macs"], macs)
print(f"cornernet (Hourglass-104): {params} parameters, {macs / 1e9:.2f} GMAC at 512² (backbone)")
del model

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
