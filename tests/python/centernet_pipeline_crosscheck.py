#!/usr/bin/env python3
"""Cross-check of `hourglass predict` with a CenterNet multi_pose model against CenterNet's own
test-time pipeline, run by CTest where Debian's python3-torch and python3-opencv are present.

The reference is CenterNet's MultiPoseDetector: BaseDetector.pre_process, then process,
post_process and merge_outputs (centernet/lib/, vendored unmodified, with utils/image.py and
utils/post_process.py; its network and decoder are centernet/large_hourglass.py and decode.py).
A small multi_pose network built by CenterNet's `exkp` with random weights and batch-norm
statistics, saved as CenterNet saves it, runs on a real COCO photo from tests/data: at a fixed
resolution and with CenterNet's --keep_res, with its flip test off and on. Every person CenterNet
returns (all K) must be in predict's JSON (--det-threshold 0) in the same order, with the box's
corners and every joint within 0.5 px and the score within 1e-4 (people whose scores tie within
1e-6, which random weights give in the zero padding of --keep_res, may come in either order: the
two sides' float rounding decides); and its --save-results must be
what CenterNet's evaluation writes for them (COCOHP.convert_eval_format, every number rounded to
2 decimals): equal, or one rounding step (0.01) apart where the two sit on either side of one.

How the reference runs: the detector is made without its __init__, which would build a network
from CenterNet's model factory; the attributes its methods read are set instead (the options are
those of CenterNet's opts.py for multi_pose on coco_hp). Modules it imports but this path never
calls are stubbed: the progress bar, the model factory, the debugger and pycocotools (COCOHP's
convert_eval_format is called on a stand-in for the dataset, with its own _to_float). torch.cuda.synchronize,
which its process() calls, is a no-op on this CPU-only torch.
Usage: centernet_pipeline_crosscheck.py HOURGLASS_BINARY IMAGE WORK_DIR
"""
import json
import os
import subprocess
import sys
import types

import cv2
import numpy as np
import torch

here = os.path.dirname(__file__)
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "centernet", "lib"))
from centernet import decode, utils as model_utils  # noqa: E402
from centernet_fixtures import randomise, small_exkp  # noqa: E402

for name, attrs in {"progress": {}, "progress.bar": {"Bar": object},
                    "pycocotools": {}, "pycocotools.coco": {},
                    "pycocotools.cocoeval": {"COCOeval": object},
                    "models": {}, "models.model": {"create_model": None, "load_model": None},
                    "utils.debugger": {"Debugger": object}}.items():
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
sys.modules["models"].__path__ = []
sys.modules["models.decode"] = decode
sys.modules["models.utils"] = model_utils
torch.cuda.synchronize = lambda *args, **kwargs: None
from datasets.dataset.coco_hp import COCOHP  # noqa: E402
from detectors.multi_pose import MultiPoseDetector  # noqa: E402

MULTI_POSE = {"hm": 1, "wh": 2, "reg": 2, "hps": 34, "hm_hp": 17, "hp_offset": 2}
# coco_hp.py's
MEAN = np.array([0.40789654, 0.44719302, 0.47026115], dtype=np.float32).reshape(1, 1, 3)
STD = np.array([0.28863828, 0.27408164, 0.27809835], dtype=np.float32).reshape(1, 1, 3)
FLIP_IDX = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [13, 14], [15, 16]]


def small_multi_pose(seed):
    model = randomise(small_exkp(2, [8, 12, 16], [1, 2, 2], 2, 12, 8, MULTI_POSE), seed)
    # Heatmap logits spread out, so that the ranking of the K people is not decided by rounding:
    # random weights give centres of nearly equal scores.
    with torch.no_grad():
        for head in ("hm", "hm_hp"):
            getattr(model, head)[-1][1].weight.mul_(20)
    return model


def reference(model, image, size, keep_res, flip, k, multiple):
    det = object.__new__(MultiPoseDetector)
    det.model = model
    det.mean, det.std = MEAN, STD
    det.max_per_image, det.num_classes, det.scales, det.pause = 100, 1, [1.0], True
    det.flip_idx = FLIP_IDX
    det.opt = types.SimpleNamespace(
        fix_res=not keep_res, keep_res=keep_res, input_h=size, input_w=size, pad=multiple - 1,
        down_ratio=4, flip_test=flip, hm_hp=True, mse_loss=False, reg_offset=True,
        reg_hp_offset=True, K=k, nms=False, test_scales=[1.0], flip_idx=FLIP_IDX)
    images, meta = det.pre_process(image, 1.0)
    _, dets = det.process(images)
    return det.merge_outputs([det.post_process(dets, meta, 1.0)])[1]


def predicted(weights, image_path, extra):
    out, results = os.path.join(work, "people.json"), os.path.join(work, "results.json")
    subprocess.run([binary, "--threads", "2", "predict", image_path, "--weights", weights,
                    "--det-threshold", "0", "-o", out, "--save-results", results, *extra],
                   check=True, capture_output=True)
    with open(out) as f, open(results) as g:
        doc = json.load(f)
        return doc, doc["results"][0]["people"], json.load(g)


def centernet_results(ref, image_id):
    """What CenterNet's evaluation writes for one image's results (coco_hp.py)."""
    dataset = types.SimpleNamespace()
    dataset._to_float = lambda x: COCOHP._to_float(dataset, x)
    return COCOHP.convert_eval_format(dataset, {image_id: {1: [list(r) for r in ref]}})


def tie_aware_order(coords, scores, ref):
    """For each reference person, the predicted one at its rank, or, where the scores tie within
    1e-6, the closest one of the tie."""
    order, used = [], set()
    for r in ref:
        ties = [j for j in range(len(scores)) if j not in used and abs(scores[j] - r[4]) <= 1e-6]
        ties = ties or [len(order)]
        want = np.array(r[:4] + r[5:39])
        best = min(ties, key=lambda j: np.abs(coords[j] - want).max())
        used.add(best)
        order.append(best)
    return order


def compare_results(got, want, what):
    """Equal, or one rounding step apart; returns how many numbers differ."""
    assert len(got) == len(want), (what, len(got), len(want))
    differing = 0
    for g, w in zip(got, want):
        assert g["image_id"] == w["image_id"] and g["category_id"] == w["category_id"], (g, w)
        for key in ("bbox", "keypoints", "score"):
            a, b = np.atleast_1d(g[key]), np.atleast_1d(w[key])
            assert a.shape == b.shape and np.abs(a - b).max() <= 0.01 + 1e-9, (what, key, a, b)
            differing += int((a != b).sum())
    return differing


binary, image_path, work = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
model = small_multi_pose(900)
weights = os.path.join(work, "multi_pose.pth")
torch.save({"epoch": 140, "state_dict": {"module." + n: t for n, t in model.state_dict().items()}},
           weights)
image = cv2.imread(image_path)
K, SIZE, MULTIPLE = 40, 128, 16
worst_px, worst_score = 0.0, 0.0
for keep_res, flip, backend in [(False, False, ["--backend", "torch"]),
                                (False, True, ["--backend", "engine", "--precision", "f32",
                                               "--algorithm", "direct"]),
                                (True, True, ["--backend", "torch"]),
                                (True, False, ["--backend", "engine", "--precision", "f32",
                                               "--algorithm", "direct"])]:
    with torch.no_grad():
        ref = reference(model, image, SIZE, keep_res, flip, K, MULTIPLE)
    extra = ["--top-k", str(K), "--flip" if flip else "--no-flip", *backend]
    extra += ["--keep-res"] if keep_res else ["--size", str(SIZE)]
    doc, people, results = predicted(weights, image_path, extra)
    what = f"keep_res={keep_res} flip={flip} {backend[1]}"
    assert len(people) == len(ref) == K, (what, len(people), len(ref))
    assert doc["flip_test"] == flip, (what, doc["flip_test"])
    coords = []
    for p in people:
        x, y, w, h = p["box"]
        coords.append(np.array([x, y, x + w, y + h] + [
            c for name in doc["joints"] for c in (p["joints"][name]["x"], p["joints"][name]["y"])]))
    order = tie_aware_order(coords, [p["detection_score"] for p in people], ref)
    people, coords, results = ([people[j] for j in order], [coords[j] for j in order],
                               [results[j] for j in order])
    for i, (p, got, r) in enumerate(zip(people, coords, ref)):
        px = float(np.abs(got - np.array(r[:4] + r[5:39])).max())
        score = abs(p["detection_score"] - r[4])
        assert px <= 0.5 and score <= 1e-4, (what, i, px, score, p, r)
        assert p["found_by"] == "bottom-up", p["found_by"]
        worst_px, worst_score = max(worst_px, px), max(worst_score, score)
    image_id = int(os.path.splitext(os.path.basename(image_path))[0])
    differing = compare_results(results, centernet_results(ref, image_id), what)
    print(f"{what}: {K} people match; COCO results: {differing} numbers one rounding step apart")
print(f"passed (worst coordinate error {worst_px:.2e} px, worst score error {worst_score:.2e})")
