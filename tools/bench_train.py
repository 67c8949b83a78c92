#!/usr/bin/python3
"""Times one training step of the 8-stack 256×256 network, batch 8, in one run: the reference
PyTorch implementation (bearpaw's HourglassNet as in tools/make_fixtures.py: 8 stacks, 256
features, one residual per block; float32, RMSprop, MSE over every stack) against `hourglass
train` with amp=off, amp=bf16 and amp=auto (the default). They run in turns, --rounds times, so
that load that comes and goes slows all of them alike. Prints ms per sample, the ratios, auto
against the faster of off and bf16, and the fraction of a given FMA peak the step reaches
(forward + backward ≈ 3 × the forward's arithmetic). Where `hourglass train` refuses bf16 (a CPU
without it) that mode is left out.

    /usr/bin/python3 tools/bench_train.py --hourglass build/hourglass --threads 2 --peak-gflops 307

Heavy: about 10 minutes on 2 cores with the defaults (8 stacks at 1–2 s per sample)."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import HourglassNet  # noqa: E402


def reference_ms_per_sample(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = HourglassNet(args.stacks, 1, 16)
    net.train()
    opt = torch.optim.RMSprop(net.parameters(), lr=2.5e-4, alpha=0.99, eps=1e-8)
    x = torch.rand(args.batch, 3, args.size, args.size)
    target = torch.rand(args.batch, 16, args.size // 4, args.size // 4)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        opt.zero_grad()
        out = net(x)
        loss = ((out - target.unsqueeze(1)) ** 2).mean(dim=(0, 2, 3, 4)).sum()
        loss.backward()
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / args.batch


def ours_ms_per_sample(args, amp):
    with tempfile.TemporaryDirectory() as run_dir:
        steps = args.warmup + args.steps
        cmd = [args.hourglass, "train", "--recipe", "paper", "--run-dir", run_dir,
               "--set", f"model.stacks={args.stacks}", "--set", f"amp={amp}",
               "--set", "amp_cache=off", "--set", "dataset=synthetic:1000:1", "--set",
               "val_dataset=", "--set", f"input_size={args.size}", "--set",
               f"batch_size={args.batch}", "--set", f"max_steps={steps}",
               "--set", f"threads={args.threads}"]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            if amp == "bf16":  # refused on this CPU: reported, not timed
                return None, done.stderr.strip().splitlines()[-1]
            sys.exit(f"bench_train: {' '.join(cmd)} failed:\n{done.stderr}")
        lines = [json.loads(l) for l in open(os.path.join(run_dir, "log.jsonl"))]
        chosen = next((l["chosen_bf16"] for l in lines if l.get("type") == "amp_probe"), None)
        # samples_per_s is cumulative over the epoch: elapsed = samples / rate at each step.
        elapsed = {l["step"]: l["step"] * args.batch / l["samples_per_s"]
                   for l in lines if l.get("type") == "step"}
        ms = 1e3 * (elapsed[steps] - elapsed[args.warmup]) / (args.steps * args.batch)
        return ms, chosen


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hourglass", default="build/hourglass")
    p.add_argument("--stacks", type=int, default=8)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gflop", type=float, default=54.9,
                   help="forward GFLOP per sample (8 stacks, 256²: 54.9)")
    p.add_argument("--peak-gflops", type=float, default=0,
                   help="the cores' measured FMA peak, GFLOP/s (prints the fraction reached)")
    args = p.parse_args()

    results = {"reference": [], "off": [], "bf16": [], "auto": []}
    chosen = None
    bf16_refused = False
    for r in range(args.rounds):
        results["reference"].append(reference_ms_per_sample(args))
        for amp in ("off", "bf16", "auto"):
            if amp == "bf16" and bf16_refused:
                continue
            ms, c = ours_ms_per_sample(args, amp)
            if ms is None:
                print(f"amp=bf16 left out: {c}", flush=True)
                bf16_refused = True
                continue
            results[amp].append(ms)
            chosen = c if amp == "auto" else chosen
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.0f} ms/sample" for k, v in
                                              results.items() if v), flush=True)
    med = {k: statistics.median(v) for k, v in results.items() if v}
    print(f"\n{args.stacks} stacks, {args.size}², batch {args.batch}, {args.threads} threads; "
          f"median of {args.rounds} rounds of {args.steps} steps; torch {torch.__version__}")
    for k, label in (("reference", "reference PyTorch (float32)"), ("off", "ours amp=off"),
                     ("bf16", "ours amp=bf16"),
                     ("auto", f"ours amp=auto (chose {'bf16' if chosen else 'float32'})")):
        if k not in med:
            continue
        rate = 3 * args.gflop / (med[k] / 1e3)
        line = f"  {label:42s} {med[k]:8.1f} ms/sample  {rate:6.1f} GFLOP/s"
        if args.peak_gflops > 0:
            line += f"  ({100 * rate / args.peak_gflops:.0f}% of {args.peak_gflops:g})"
        if k != "reference":
            line += f"  {med['reference'] / med[k]:.2f}× the reference"
        print(line)
    fastest = min(med[k] for k in ("off", "bf16") if k in med)
    print(f"  amp=auto / amp=off: {med['auto'] / med['off']:.3f}; "
          f"amp=auto / min(off, bf16): {med['auto'] / fastest:.3f}")


if __name__ == "__main__":
    main()
