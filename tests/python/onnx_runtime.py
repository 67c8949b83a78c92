"""ONNX Runtime for the cross-checks: npm's onnxruntime-node run through tools/ort_run.js, found
through NODE_PATH or tools/node_modules (npm install --prefix tools --ignore-scripts)."""
import json
import os
import shutil
import subprocess

import numpy
import torch

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")


def available():
    """(node, environment) when onnxruntime-node loads, else None."""
    node = shutil.which("node")
    if node is None:
        return None
    env = dict(os.environ)
    env["NODE_PATH"] = os.pathsep.join(filter(None, [env.get("NODE_PATH"),
                                                     os.path.join(TOOLS, "node_modules")]))
    probe = subprocess.run([node, "-e", "require('onnxruntime-node')"], env=env, capture_output=True)
    return (node, env) if probe.returncode == 0 else None


def run(ort, model, x, work):
    """Every output of `model` on the tensor x, by name (flat float32 tensors)."""
    x_path, y_path = os.path.join(work, "x.f32"), os.path.join(work, "y.f32")
    x.contiguous().numpy().tofile(x_path)
    node, env = ort
    out = subprocess.run([node, os.path.join(TOOLS, "ort_run.js"), model, x_path,
                          ",".join(map(str, x.shape)), y_path], check=True, env=env,
                         capture_output=True, text=True).stdout
    names = json.loads(out)["outputs"]
    return {n: torch.from_numpy(numpy.fromfile(y_path + "." + n, dtype=numpy.float32)) for n in names}
