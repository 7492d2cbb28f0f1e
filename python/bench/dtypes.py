"""Element types at the same bytes per second: frames of float16 (and bool, complex64, bfloat16
where ml_dtypes is installed) against uint8 frames of the same size in bytes, between two
processes, interleaved round by round in one run (issue 26). Not a test: prints a table.

    python python/bench/dtypes.py [--rounds 5] [--seconds 1]

As python/bench/bench.py: the producer copies a source array in (send, memcpy speed); the
consumer iterates and reads every byte (a vectorised u64 word sum over the item's bytes, whatever
its dtype) and releases it. Frames: 1080p RGB's 6,220,800 bytes, 4 slots; small: 64 bytes, 1,024
slots. A bool item is checked for bytes other than 0/1 on receipt (all 0/1 here: zero copy), a
cost the other types do not have. Each round prints the load average and the host state (the
round trip of a cache line bounced between two threads; compare rows of one state); ratios are
taken within each round, then the median over rounds.
"""

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

import ndring
from ndring._ndring import _line_round_trip_ns

try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None

CTX = mp.get_context("fork")
FRAME_BYTES = 1080 * 1920 * 3
SMALL_BYTES = 64


def dtypes():
    d = [("uint8", np.dtype(np.uint8)), ("float16", np.dtype(np.float16)),
         ("bool", np.dtype(bool)), ("complex64", np.dtype(np.complex64))]
    if ml_dtypes is not None:
        d.append(("bfloat16", np.dtype(ml_dtypes.bfloat16)))
    return d


def shape_of(nbytes, dt):
    """A frame of `nbytes` in `dt`: (1080, 1920*3 bytes / itemsize) or (64 / itemsize,)."""
    if nbytes == FRAME_BYTES:
        return (1080, 1920 * 3 // dt.itemsize)
    return (nbytes // dt.itemsize,)


def checksum(a):
    """Every byte read: the u64 word sum of the item's bytes (numpy, vectorised) for frames; the
    bytes as one integer for 64-byte items (numpy's reduction costs ~1.3 us a call)."""
    if a.nbytes <= 4096:
        return int.from_bytes(a.tobytes(), "little")
    return int(a.reshape(-1).view(np.uint64).sum())


def source(shape, dt):
    """A frame of valid values (bool: 0/1 bytes, as numpy writes them)."""
    if dt == np.dtype(bool):
        return (np.arange(int(np.prod(shape))) % 3 == 0).reshape(shape)
    return np.full(shape, 7, dtype=dt)


def producer(name, shape, dt, seconds):
    src = source(shape, dt)
    with ndring.Producer.open(name, timeout=10) as tx:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(64):
                tx.send(src)
        tx.close()


def run(nbytes, slots, dt, seconds):
    """Items per second of `dt` frames of `nbytes` bytes between two processes."""
    name = f"/ndr-bench-dt-{os.getpid()}"
    shape = shape_of(nbytes, dt)
    rx = ndring.Consumer.create(name, shape=shape, dtype=dt, slots=slots)
    p = CTX.Process(target=producer, args=(name, shape, dt, seconds))
    p.start()
    items = iter(rx)
    a = next(items)
    checksum(a)
    first, first_seq = time.perf_counter(), ndring.info(a).seq
    for a in items:
        checksum(a)
    rate = (ndring.info(a).seq - first_seq) / (time.perf_counter() - first)
    del a
    p.join()
    rx.detach()
    return rate


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    sizes = [("1080p frame, 6,220,800 B, 4 slots", FRAME_BYTES, 4),
             ("64 B, 1,024 slots", SMALL_BYTES, 1024)]
    kinds = dtypes()
    print(f"ndring dtype bench: {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"{args.rounds} rounds of {args.seconds} s per variant, dtypes interleaved in each "
          f"round; ml_dtypes {'installed' if ml_dtypes else 'missing (no bfloat16 row)'}")
    rates = {(s, k): [] for s, *_ in sizes for k, _ in kinds}
    for rnd in range(args.rounds):
        load = os.getloadavg()
        line = [f"round {rnd + 1} (load {load[0]:.2f})"]
        for s, nbytes, slots in sizes:
            line.append(f"[line {_line_round_trip_ns()} ns]")
            # Each round starts with another dtype: none always runs first or last.
            order = kinds[rnd % len(kinds):] + kinds[:rnd % len(kinds)]
            for k, dt in order:
                r = run(nbytes, slots, dt, args.seconds)
                rates[(s, k)].append(r)
                line.append(f"{k}: {r:,.0f}/s")
        print("; ".join(line), flush=True)
    print()
    print("| size | dtype | items/s (median) | GB/s | / uint8 (median of rounds, min-max) |")
    print("|---|---|---|---|---|")
    for s, nbytes, _ in sizes:
        base = rates[(s, "uint8")]
        for k, _ in kinds:
            r = rates[(s, k)]
            ratios = [a / b for a, b in zip(r, base)]
            med = statistics.median(r)
            print(f"| {s} | {k} | {med:,.0f} | {med * nbytes / 1e9:.2f} | "
                  f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
