#!/usr/bin/env python3
"""Cross-check of `hourglass eval --predictions` (COCO keypoint AP/AR) against the official
evaluation, cocoapi's pycocotools COCOeval with iouType 'keypoints'.

Writes random COCO keypoint ground truths and results it has never seen before (crowds, people
without labelled joints, small/medium/large areas, ties in score, more than 20 people in an
image), scores each with both and compares the ten figures of the keypoint summary within 0.001.

usage: coco_crosscheck.py HOURGLASS WORKDIR [--cocoapi PYTHONAPI_DIR] [--cases N] [--seed S]

pycocotools is imported as installed; with --cocoapi, from a cocoapi checkout's PythonAPI
directory instead, without building it: keypoint evaluation is pure Python, so the C mask
extension (and matplotlib, which only its drawing needs) are stubbed.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import types

import numpy as np

NAMES = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]
JOINTS = 17


def import_cocoeval(cocoapi):
    if not hasattr(np, "float"):  # cocoeval uses np.float, removed in numpy 1.24
        np.float = float
    if cocoapi:
        sys.path.insert(0, cocoapi)
        stub = types.ModuleType("pycocotools._mask")
        for name in ["iou", "merge", "frPyObjects", "encode", "decode", "area", "toBbox"]:
            setattr(stub, name, None)
        sys.modules["pycocotools._mask"] = stub
        for name in ["matplotlib", "matplotlib.pyplot", "matplotlib.collections",
                     "matplotlib.patches"]:
            try:
                __import__(name)
            except ImportError:
                module = types.ModuleType(name)
                module.PatchCollection = module.Polygon = None
                sys.modules[name] = module
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    return COCO, COCOeval


def random_person(rng, cx, cy, side):
    """17 joints around (cx, cy) within a box of about side × side, random visibility."""
    kp = []
    for _ in range(JOINTS):
        v = rng.choice([0, 1, 2, 2, 2])
        x, y = cx + rng.uniform(-side / 2, side / 2), cy + rng.uniform(-side / 2, side / 2)
        kp += [round(x, 2), round(y, 2), v] if v else [0, 0, 0]
    return kp


def make_case(rng):
    images, annotations, results = [], [], []
    ann_id = 1
    for image_id in rng.sample(range(1, 1000), rng.randint(5, 25)):
        images.append({"id": image_id, "file_name": "%d.jpg" % image_id, "width": 1000,
                       "height": 1000})
        people = []
        for _ in range(rng.randint(0, 6)):
            side = rng.choice([20, 40, 70, 90, 110, 150, 300]) * rng.uniform(0.8, 1.2)
            cx, cy = rng.uniform(100, 900), rng.uniform(100, 900)
            kp = random_person(rng, cx, cy, side)
            crowd = rng.random() < 0.08
            if rng.random() < 0.1:
                kp = [0] * (3 * JOINTS)
            box = [cx - side / 2, cy - side / 2, side, side]
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": 1, "keypoints": kp,
                "num_keypoints": sum(1 for k in range(JOINTS) if kp[3 * k + 2] > 0),
                "bbox": box, "area": side * side * rng.uniform(0.5, 0.9),
                "iscrowd": int(crowd)})
            people.append((kp, box))
            ann_id += 1
        # Detections: noisy copies of the people (some twice, some missed), false positives,
        # sometimes more than 20. Scores on a coarse grid, so that many tie.
        count = rng.choice([0, 1, 3, 6, 25]) if not people else None
        for kp, box in people:
            for _ in range(rng.choice([0, 1, 1, 1, 2])):
                noise = rng.choice([0.005, 0.01, 0.02, 0.05, 0.1, 0.3]) * box[2]
                det = []
                for k in range(JOINTS):
                    x = (kp[3 * k] if kp[3 * k + 2] else box[0] + rng.uniform(0, box[2]))
                    y = (kp[3 * k + 1] if kp[3 * k + 2] else box[1] + rng.uniform(0, box[3]))
                    det += [round(x + rng.gauss(0, noise), 2), round(y + rng.gauss(0, noise), 2),
                            round(rng.random(), 3)]
                results.append({"image_id": image_id, "category_id": 1, "keypoints": det,
                                "score": round(rng.random(), 1)})
        for _ in range(count if count is not None else rng.choice([0, 0, 1, 2, 22])):
            cx, cy, side = rng.uniform(0, 1000), rng.uniform(0, 1000), rng.uniform(10, 300)
            det = []
            for _ in range(JOINTS):
                det += [round(cx + rng.uniform(-side, side) / 2, 2),
                        round(cy + rng.uniform(-side, side) / 2, 2), 0.5]
            results.append({"image_id": image_id, "category_id": 1, "keypoints": det,
                            "score": round(rng.random(), 1)})
    rng.shuffle(results)
    truth = {"images": images, "annotations": annotations,
             "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    return truth, results


def official(COCO, COCOeval, truth_path, results_path):
    devnull = open(os.devnull, "w")
    stdout, sys.stdout = sys.stdout, devnull
    try:
        gt = COCO(truth_path)
        dt = gt.loadRes(results_path)
        e = COCOeval(gt, dt, "keypoints")
        e.params.useSegm = None
        e.evaluate()
        e.accumulate()
        e.summarize()
    finally:
        sys.stdout = stdout
    return [float(v) for v in e.stats]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hourglass")
    ap.add_argument("workdir")
    ap.add_argument("--cocoapi", default="")
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    COCO, COCOeval = import_cocoeval(args.cocoapi)
    os.makedirs(args.workdir, exist_ok=True)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print("seed", seed)
    rng = random.Random(seed)
    worst = 0.0
    for case in range(args.cases):
        truth, results = make_case(rng)
        if not results:  # cocoeval's loadRes cannot read an empty list
            continue
        truth_path = os.path.join(args.workdir, "truth%d.json" % case)
        results_path = os.path.join(args.workdir, "results%d.json" % case)
        out_path = os.path.join(args.workdir, "eval%d.json" % case)
        json.dump(truth, open(truth_path, "w"))
        json.dump(results, open(results_path, "w"))
        expected = official(COCO, COCOeval, truth_path, results_path)
        run = subprocess.run([args.hourglass, "eval", truth_path, "--predictions", results_path,
                              "--json", out_path], capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit("case %d: hourglass eval failed:\n%s%s" % (case, run.stdout, run.stderr))
        got = json.load(open(out_path))["coco_keypoints"]
        for name, want in zip(NAMES, expected):
            diff = abs(got[name] - want)
            worst = max(worst, diff)
            if diff > 1e-3:
                sys.exit("case %d (seed %d): %s = %.6f, official %.6f" %
                         (case, seed, name, got[name], want))
        print("case %d: %d people, %d detections: AP %.4f AR %.4f (official %.4f %.4f)" %
              (case, len(truth["annotations"]), len(results), got["AP"], got["AR"], expected[0],
               expected[5]))
    print("all %d figures of %d cases within 0.001 of the official evaluation (largest "
          "difference %.2g)" % (len(NAMES), args.cases, worst))


if __name__ == "__main__":
    main()
