#!/usr/bin/env python3
"""The approach users start from: numpy arrays in multiprocessing.shared_memory, slot indices
passed through a multiprocessing.Queue.

8 slots of shape SHAPE live in one SharedMemory block. A producer process takes a free slot index
from `free` (a Queue), writes every byte of the slot in place (ndarray.fill), and puts
(slot, k) on `ready` (a second Queue). The consumer (the parent process) takes (slot, k) from
`ready`, reads every byte (a uint64 sum, verified: no loss, no corruption) and returns the slot
index through `free`.

Workloads, as in benches/ipc.rs:
  W3: 1080x1920x3 u8 frames, frames/s, timed from frame 8 to the last.
  W2-like: 64-byte u8 arrays, items/s, timed from item n/10 to the last.

Prints human-readable lines and `RESULT key value` lines.
Environment: PC_RUNS (default 5), PC_FRAMES (default 200), PC_PY_ITEMS (default 100000).
"""

import multiprocessing as mp
import os
import statistics
import sys
import time

import numpy as np
from multiprocessing import shared_memory

SLOTS = 8


def producer(shm, shape, n, free, ready):
    slots = np.ndarray((SLOTS,) + shape, dtype=np.uint8, buffer=shm.buf)
    for k in range(n):
        s = free.get()
        slots[s].fill(k % 255 + 1)  # every byte written in place
        ready.put((s, k))
    ready.put(None)
    del slots


def run(shape, n, warm):
    size = int(np.prod(shape))
    shm = shared_memory.SharedMemory(create=True, size=SLOTS * size)
    try:
        slots = np.ndarray((SLOTS,) + shape, dtype=np.uint8, buffer=shm.buf)
        ctx = mp.get_context("fork")
        free, ready = ctx.Queue(), ctx.Queue()
        for s in range(SLOTS):
            free.put(s)
        p = ctx.Process(target=producer, args=(shm, shape, n, free, ready))
        p.start()
        start = time.perf_counter()
        for k in range(n):
            s, kk = ready.get()
            assert kk == k, f"out of order: {kk} != {k}"
            total = int(slots[s].sum(dtype=np.uint64))  # every byte read
            assert total == size * (k % 255 + 1), f"item {k} corrupt"
            free.put(s)
            if k == warm:
                start = time.perf_counter()
        dt = time.perf_counter() - start
        assert ready.get() is None
        p.join()
        assert p.exitcode == 0
        del slots
        return (n - warm - 1) / dt
    finally:
        shm.close()
        shm.unlink()


def main():
    runs = int(os.environ.get("PC_RUNS", "5"))
    frames = int(os.environ.get("PC_FRAMES", "200"))
    items = int(os.environ.get("PC_PY_ITEMS", "100000"))
    print(f"# python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"multiprocessing.shared_memory + Queue, {SLOTS} slots, {runs} run(s)")
    w3, small = [], []
    for r in range(runs):
        w3.append(run((1080, 1920, 3), frames, 8))
        small.append(run((64,), items, items // 10))
        print(f"run {r + 1}/{runs}: W3 {w3[-1]:.1f} frames/s, 64 B {small[-1]:.0f} items/s",
              file=sys.stderr)
    w3m, sm = statistics.median(w3), statistics.median(small)
    print(f"W3 python 1080p frames: {w3m:.1f} frames/s ({w3m * 1080 * 1920 * 3 / 1e9:.2f} GB/s)")
    print(f"64 B arrays python: {sm:.0f} items/s")
    print(f"RESULT python_w3_frames_per_s {w3m:.1f}")
    print(f"RESULT python_small_items_per_s {sm:.0f}")


if __name__ == "__main__":
    main()
