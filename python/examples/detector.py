"""A model server and its cameras through one request/reply segment, as Frigate's object
detector does: each camera sends a (320, 320, 3) uint8 frame and gets back the (20, 6) float32
detections computed from its own frame, zero copy both ways.

    python python/examples/detector.py [--cameras 2] [--frames 200]
"""

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

import ndring

NAME = f"/detector-{os.getpid()}"
FRAME = ((320, 320, 3), np.uint8)
DETECTIONS = ((20, 6), np.float32)


def detect(frame):
    """Stands in for the model: 20 boxes whose scores come from the frame."""
    out = np.zeros(DETECTIONS[0], np.float32)
    out[:, 0] = frame[::16, 0, 0][:20]
    out[:, 1] = frame.mean()
    return out


def camera(name, index, frames, results):
    cli = ndring.Client.open(name, timeout=10)
    rng = np.random.default_rng(index)
    ok = 0
    for _ in range(frames):
        frame = rng.integers(0, 256, FRAME[0], dtype=np.uint8)
        out = cli.call(frame, timeout=5.0)  # a read-only array over the call's slot
        ok += np.array_equal(out, detect(frame))
    results.put((index, ok))
    cli.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cameras", type=int, default=2)
    p.add_argument("--frames", type=int, default=200)
    a = p.parse_args()
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    with ndring.Server.create(NAME, request=FRAME, reply=DETECTIONS, clients=a.cameras) as srv:
        cams = [ctx.Process(target=camera, args=(NAME, i, a.frames, results)) for i in range(a.cameras)]
        for c in cams:
            c.start()
        start = time.perf_counter()
        for _ in range(a.cameras * a.frames):
            req = srv.recv(timeout=30)
            req.reply(detect(req.array))  # or: with req.reply_array() as out: out[:] = ...
        elapsed = time.perf_counter() - start
        for c in cams:
            c.join(30)
        got = sorted(results.get(timeout=10) for _ in cams)
    assert got == [(i, a.frames) for i in range(a.cameras)], got
    print(f"{a.cameras} cameras x {a.frames} frames, every reply its own frame's: "
          f"{a.cameras * a.frames / elapsed:.0f} calls/s")


if __name__ == "__main__":
    main()
