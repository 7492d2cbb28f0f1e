"""Per-item costs of the 64-byte stream's steps, in one process (no peer, no waiting), ns per
item: the producer's `tx.send(src)` into a ring with room, the consumer's `rx.recv()` on a
pre-filled ring, `del a` (the release), the consumer's checksum, the bench's consumer loop with
all of it, and that loop with `src.view()` (numpy's cheapest new array) in place of `rx.recv()`:
the floor for any transport handing out one new array per item. Not a test: prints a table;
compare rows of one run.

    python python/bench/per_item.py [--items 4096] [--rounds 7]
    python python/bench/per_item.py --stream 0.5

`--stream S` instead runs bench.py's ndring 64-byte stream between two processes for S seconds
and prints items/s and the consumer thread's CPU time per item (ns): what a busy host's
preemptions do not inflate, unlike the rate.
"""

import argparse
import os
import statistics
import time

import numpy as np

import ndring

SMALL = (64,)


def checksum(a):
    return int.from_bytes(a.tobytes(), "little")


def one_round(items):
    name = f"/ndr-per-item-{os.getpid()}"
    tx = ndring.Producer.create(name, shape=SMALL, dtype=np.uint8, slots=items)
    rx = ndring.Consumer.open(name)
    src = np.full(SMALL, 7, np.uint8)
    pc = time.perf_counter
    out = {}

    t = pc()
    for _ in range(items):
        tx.send(src)
    out["send"] = pc() - t

    held = []
    t = pc()
    for _ in range(items):
        held.append(rx.recv())
    out["recv"] = pc() - t
    t = pc()
    for a in held:
        checksum(a)
    out["checksum"] = pc() - t
    t = pc()
    held.clear()
    out["release (del)"] = pc() - t
    a = None

    # The bench's consumer loop, on a pre-filled ring.
    for _ in range(items):
        tx.send(src)
    n, first = 0, None
    t = pc()
    for _ in range(items):
        try:
            a = rx.recv()
        except ndring.Closed:
            break
        first = first or pc()
        checksum(a)
        del a
        n += 1
    out["consumer loop"] = pc() - t

    # The same loop with numpy's own cheapest new array (a view of `src`) in place of `recv`:
    # the floor of any transport that hands out a new array per item.
    n, first = 0, None
    t = pc()
    for _ in range(items):
        try:
            a = src.view()
        except ndring.Closed:
            break
        first = first or pc()
        checksum(a)
        del a
        n += 1
    out["loop, view()"] = pc() - t

    t = pc()
    for _ in range(items):
        pass
    out["empty loop"] = pc() - t
    rx.close()
    tx.close()
    ndring.remove(name)
    return {k: v / items * 1e9 for k, v in out.items()}


def stream(seconds):
    """bench.py's ndring 64-byte stream: (items/s, consumer CPU ns per item)."""
    import bench

    name = f"/ndr-per-item-s-{os.getpid()}"
    rx = ndring.Consumer.create(name, shape=SMALL, dtype=np.uint8, slots=1024)
    p = bench.CTX.Process(target=bench.ndring_producer, args=(name, SMALL, seconds))
    p.start()
    n, first = 0, None
    while True:
        try:
            a = rx.recv()
        except ndring.Closed:
            break
        if first is None:
            first, cpu = time.perf_counter(), time.thread_time()
        bench.checksum(a)
        del a
        n += 1
    wall, cpu = time.perf_counter() - first, time.thread_time() - cpu
    p.join()
    return (n - 1) / wall, cpu / (n - 1) * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--stream", type=float, metavar="SECONDS")
    args = ap.parse_args()
    if args.stream:
        rate, cpu = stream(args.stream)
        print(f"ndring 64-byte stream: {rate:,.0f} items/s; consumer CPU {cpu:.0f} ns per item")
        return
    rows = {}
    for _ in range(args.rounds):
        for k, v in one_round(args.items).items():
            rows.setdefault(k, []).append(v)
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.rounds} rounds of "
          f"{args.items} items; ns per item, median (min-max)")
    for k, v in rows.items():
        print(f"  {k:14} {statistics.median(v):7.0f} ({min(v):.0f}-{max(v):.0f})")


if __name__ == "__main__":
    main()
