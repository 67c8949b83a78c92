#!/usr/bin/env python3
"""Load and fault test of `hourglass serve`: N concurrent clients POST an image for a bounded time
and number of requests, optionally mixed with malformed requests, against 127.0.0.1 only.

  tools/serve_load.py --port 8080 --image tests/data/mpii/images/005808361.jpg \
      --clients 16 --seconds 30 [--malformed 1000] [--pid PID] [--query whole_image=1]

Prints one JSON line: good requests/s, p50/p99 latency (ms), errors among the good requests,
the malformed requests' statuses (each must be 4xx), the server's RSS (MiB, from /proc/PID when
--pid is given: at start, peak while running, at the end), whether /healthz still answers, and
from /metrics before and after: the mean crops per network call and the network's ms per crop.

  tools/serve_load.py --make-model OUT.pt [--stacks 8]
writes a random-weight 8-stack, 256-feature model in the official PyTorch re-implementation's
state_dict layout (needs Debian's python3-torch), for the figures without a trained model.
"""
import argparse
import http.client
import json
import os
import random
import struct
import sys
import threading
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def network_totals(port, token):
    """(crops, network calls, network seconds) so far, from the server's /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token} if token else {})
    values = dict(line.split() for line in conn.getresponse().read().decode().splitlines()
                  if line.startswith(("hg_batch_crops_", "hg_network_seconds_")))
    return (float(values["hg_batch_crops_sum"]), float(values["hg_batch_crops_count"]),
            float(values["hg_network_seconds_sum"]))


def malformed_requests(jpeg, max_body):
    """(name, body, content type) of each kind of bad request, cycled through."""
    png_bomb = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + struct.pack(">II", 100000, 100000) + \
        b"\x08\x02\0\0\0" + bytes(64)
    jpeg_bomb = b"\xff\xd8\xff\xc0\x00\x11\x08" + struct.pack(">HH", 60000, 60000) + \
        b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9"
    rng = random.Random(1)
    return [
        ("random", bytes(rng.getrandbits(8) for _ in range(4096)), "image/jpeg"),
        ("truncated-jpeg", jpeg[: len(jpeg) // 2], "image/jpeg"),
        ("png-bomb", png_bomb, "image/png"),
        ("jpeg-bomb", jpeg_bomb, "image/jpeg"),
        ("wrong-type", jpeg, "text/plain"),
        ("empty", b"", "image/jpeg"),
        ("oversized", bytes(max_body + 1024), "image/jpeg"),
    ]


def post(conn, path, body, content_type, token):
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    return r.status


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--image")
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--max-requests", type=int, default=100000, help="good requests at most")
    ap.add_argument("--malformed", type=int, default=0, help="malformed requests mixed in")
    ap.add_argument("--max-body-mb", type=float, default=16, help="the server's --max-body-mb")
    ap.add_argument("--query", default="", help="query of the good requests, e.g. whole_image=1")
    ap.add_argument("--token", default="")
    ap.add_argument("--pid", type=int, help="the server's process, for its RSS")
    ap.add_argument("--make-model")
    ap.add_argument("--stacks", type=int, default=8)
    a = ap.parse_args()
    if a.make_model:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch
        from make_fixtures import PoseNet, randomise
        torch.manual_seed(0)
        model = PoseNet(a.stacks, 256, 16)
        randomise(model, 0)
        torch.save(model.state_dict(), a.make_model)
        print(f"wrote {a.make_model}: {a.stacks} stacks, 256 features (random weights)")
        return
    if not a.image:
        ap.error("--image is required")
    jpeg = open(a.image, "rb").read()
    path = "/v1/pose" + ("?" + a.query if a.query else "")
    bad = malformed_requests(jpeg, int(a.max_body_mb * 1024 * 1024))
    lock = threading.Lock()
    latencies, good_errors, bad_status = [], [], {}
    bad_left = [a.malformed]
    senders = 2
    good_left = [a.max_requests]
    end = time.monotonic() + a.seconds

    def fresh():
        return http.client.HTTPConnection("127.0.0.1", a.port, timeout=120)

    # Good requests: one connection per client, back to back.
    def client(k):
        conn = fresh()
        while time.monotonic() < end:
            with lock:
                if good_left[0] <= 0:
                    return
                good_left[0] -= 1
            try:
                t0 = time.perf_counter()
                status = post(conn, path, jpeg, "image/jpeg", a.token)
                ms = 1000 * (time.perf_counter() - t0)
                with lock:
                    if status == 200:
                        latencies.append(ms)
                    else:
                        good_errors.append(status)
            except Exception as e:  # a lost good request counts as an error
                with lock:
                    good_errors.append(type(e).__name__)
                conn.close()
                conn = fresh()

    # Malformed requests, mixed in by their own senders while the good ones run: each kind in
    # turn, a new connection each (the server may close one, e.g. after 413).
    def bad_sender(k):
        i = 0
        while time.monotonic() < end:
            with lock:
                if bad_left[0] <= 0:
                    return
                bad_left[0] -= 1
            i += 1
            name, body, ctype = bad[(k + i) % len(bad)]
            conn = fresh()
            try:
                status = post(conn, "/v1/pose", body, ctype, a.token)
            except (ConnectionError, http.client.HTTPException) as e:
                status = "reset:" + type(e).__name__
            conn.close()
            with lock:
                bad_status.setdefault(name, {}).setdefault(str(status), 0)
                bad_status[name][str(status)] += 1
            # Spread over the first 80% of the run, so that all are sent while the good ones run.
            time.sleep(a.seconds / max(1, a.malformed) * senders * 0.8)

    rss_start = rss_mib(a.pid) if a.pid else None
    peak = [rss_start or 0]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_mib(a.pid))

    sampler = threading.Thread(target=sample) if a.pid else None
    if sampler:
        sampler.start()
    totals_start = network_totals(a.port, a.token)
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    threads += [threading.Thread(target=bad_sender, args=(k,)) for k in range(senders if a.malformed else 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    done.set()
    if sampler:
        sampler.join()
    crops, calls, seconds = (e - s for e, s in zip(network_totals(a.port, a.token), totals_start))
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=10)
    conn.request("GET", "/healthz")
    alive = conn.getresponse().status == 200
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None
    all_4xx = all(s.isdigit() and 400 <= int(s) < 500 for v in bad_status.values() for s in v)
    print(json.dumps({
        "clients": a.clients, "seconds": round(elapsed, 1), "good": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": pct(0.5) and round(pct(0.5), 1), "p99_ms": pct(0.99) and round(pct(0.99), 1),
        "good_errors": len(good_errors), "good_error_kinds": sorted(set(map(str, good_errors))),
        "malformed": sum(sum(v.values()) for v in bad_status.values()),
        "malformed_all_4xx": all_4xx, "malformed_status": bad_status,
        "rss_mib": rss_start and {"start": round(rss_start), "peak": round(peak[0]),
                                  "end": round(rss_mib(a.pid))},
        "mean_batch": calls and round(crops / calls, 2),
        "network_ms_per_crop": crops and round(1e3 * seconds / crops, 1),
        "alive": alive}))


if __name__ == "__main__":
    main()
