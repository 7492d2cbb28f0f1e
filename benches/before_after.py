#!/usr/bin/env python3
"""Before and after a change, in one run, interleaved round by round.

Builds the `ipc` and `ring` benches of REV (in a worktree under target/, with its own target
directory) and of the working tree, then alternates them round by round (before/after, then
after/before) and prints each round's figures, its host state (the cache-line round trip W1 and
W3 measure first) and the after/before ratios, then their medians:

* W1: p50 of the 64-byte round trip, SPSC busy-poll, SPSC default spin, MPMC busy-poll;
* W3: 1080p frames/s through SPSC rings of 2, 4, 8 and 16 slots;
* ring: the in-process claim + publish + recv + release pair of SPSC and MPMC (criterion).

    python3 benches/before_after.py REV [--rounds N] [--only ipc|ring]

Ratios are after/before: below 1 is faster for times, above 1 is faster for frames/s.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_binaries(tree, target):
    """Builds the ipc and ring benches in `tree` and returns their executables."""
    out = subprocess.run(
        ["cargo", "bench", "--no-run", "--bench", "ipc", "--bench", "ring",
         "--message-format=json", "--target-dir", target],
        cwd=tree, check=True, capture_output=True, text=True).stdout
    exes = {}
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            exes[msg["target"]["name"]] = msg["executable"]
    return exes


def run(exe, env, args=()):
    env = dict(os.environ, **env)
    return subprocess.run([exe, "--bench", *args], cwd=RUN_DIR, env=env,
                          capture_output=True, text=True, timeout=600).stdout


def cell(out, label, col=2):
    """The value (ns, or frames/s) in column `col` of the table row `label`."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == label:
            m = re.match(r"([\d.]+)\s*(µs)?", cells[col])
            return float(m.group(1)) * (1000 if m.group(2) else 1)
    raise SystemExit(f"no row {label!r} in the bench's output")


def line_rtt(out):
    m = re.search(r"raw cache-line ping-pong p50 (\d+) ns|line round trip (\d+) ns", out)
    return int(m.group(1) or m.group(2)) if m else None


def ipc_round(exe):
    w1 = run(exe, {"NDRING_BENCH_ONLY": "w1", "NDRING_BENCH_RUNS": "1", "NDRING_BENCH_RT": "20000"})
    w3 = run(exe, {"NDRING_BENCH_ONLY": "w3", "NDRING_BENCH_RUNS": "1",
                   "NDRING_BENCH_W3": "1080p", "NDRING_BENCH_FRAMES": "600"})
    figures = {
        "W1 spsc busy-poll p50 ns": cell(w1, "ndring spsc busy-poll"),
        "W1 spsc default p50 ns": cell(w1, "ndring spsc default (spin 2000)"),
        "W1 mpmc busy-poll p50 ns": cell(w1, "ndring mpmc busy-poll"),
    }
    for n in (2, 4, 8, 16):
        figures[f"W3 {n} slots frames/s"] = cell(w3, f"ndring spsc 1080p, {n} slots")
    return figures, f"line RTT W1 {line_rtt(w1)} ns, W3 {line_rtt(w3)} ns"


def ring_round(exe):
    out = run(exe, {}, ["ring-64B/(spsc|mpmc)/pair", "--noplot", "--warm-up-time", "1",
                        "--measurement-time", "2", "--sample-size", "20"])
    figures, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^(ring-\S+)", line.strip())
        if m:
            name = m.group(1)
        m = re.search(r"time:\s+\[[\d.]+ \S+ ([\d.]+) (\S+)", line)
        if m and name:
            scale = {"ps": 1e-3, "ns": 1, "µs": 1e3, "ms": 1e6}[m.group(2)]
            figures[f"{name} ns"] = float(m.group(1)) * scale
    return figures, ""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("rev")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--only", choices=["ipc", "ring"])
    a = p.parse_args()
    before_tree = os.path.join(ROOT, "target", "before-tree")
    if os.path.exists(before_tree):
        subprocess.run(["git", "worktree", "remove", "--force", before_tree], cwd=ROOT, check=True)
    subprocess.run(["git", "worktree", "add", "--detach", before_tree, a.rev], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        exes = {"before": bench_binaries(before_tree, os.path.join(ROOT, "target", "before")),
                "after": bench_binaries(ROOT, os.path.join(ROOT, "target"))}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", before_tree], cwd=ROOT)
    os.makedirs(os.path.join(RUN_DIR, "target"), exist_ok=True)
    kinds = [k for k in ("ipc", "ring") if a.only in (None, k)]
    ratios = {}
    for r in range(a.rounds):
        order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
        for kind in kinds:
            got, state = {}, {}
            for side in order:
                got[side], state[side] = (ipc_round if kind == "ipc" else ring_round)(exes[side][kind])
            parts = []
            for key, b in got["before"].items():
                q = got["after"][key] / b
                ratios.setdefault(key, []).append(q)
                parts.append(f"{key} {b:.0f} -> {got['after'][key]:.0f} ({q:.2f}x)")
            host = f" [{state['before']} | {state['after']}]" if state["before"] else ""
            print(f"round {r + 1} {kind}{host}: " + "; ".join(parts), flush=True)
    print(f"\nmedians of the per-round after/before ratios, {a.rounds} rounds:")
    for key, qs in ratios.items():
        print(f"  {key}: {statistics.median(qs):.3f}x (min {min(qs):.2f}, max {max(qs):.2f})")


RUN_DIR = os.path.join(ROOT, "target", "before-after-run")

if __name__ == "__main__":
    sys.exit(main())
