"""The Python side of W3 (1080p frames, 4 slots) and of 64-byte arrays, between two processes:
ndring against the seed approach (multiprocessing.shared_memory slots plus a Queue of slot
indices, as Frigate does) and against pickled arrays through a multiprocessing.Queue, interleaved
round by round in one run. Not a test: prints a table.

    python python/bench/bench.py [--rounds 3] [--seconds 1.5] [--small-slots 1024] [--only ndring:64]

Each transfer: the producer copies a source array into the transport (memcpy speed: ndring's
send, np.copyto into the seed's slot); the consumer reads every byte (a vectorised u64 word sum
for frames; for 64-byte arrays the bytes as one integer, see checksum) and releases it. Both shared-memory approaches get the same slot count (4 for frames,
--small-slots for 64-byte arrays: deep, since the seed's Queue is unbounded) and the pickle Queue
the same depth. Each round prints the load average and the host state: the round trip of a cache
line bounced between two threads (fast state ~100 ns, slow ~500 ns; compare rows of one state).
Also measured: ndring's recv + release per item on a pre-filled ring (one process, 64-byte arrays).
"""

import argparse
import multiprocessing as mp
import os
import statistics
import time
from multiprocessing import shared_memory

import numpy as np

import ndring
from ndring._ndring import _line_round_trip_ns

W3 = (1080, 1920, 3)
SMALL = (64,)
CTX = mp.get_context("fork")


def checksum(a):
    """Every byte read, at the cheapest per-item cost for its size: a u64 word sum (numpy,
    vectorised) for frames; for small arrays the bytes as one integer (a 64-byte copy and a
    conversion, ~0.15 us), since numpy's reduction costs ~1.3 us a call whatever the size and
    would make the 64-byte rows measure the checksum instead of the transport."""
    if a.nbytes <= 4096:
        return int.from_bytes(a.tobytes(), "little")
    return int(a.reshape(-1).view(np.uint64).sum())


# --- ndring ----------------------------------------------------------------------------------


def ndring_producer(name, shape, seconds):
    src = np.full(shape, 7, np.uint8)
    with ndring.Producer.open(name, timeout=10) as tx:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(64):
                tx.send(src)
        tx.close()


def run_ndring(shape, slots, seconds):
    name = f"/ndr-bench-{os.getpid()}"
    rx = ndring.Consumer.create(name, shape=shape, dtype=np.uint8, slots=slots)
    p = CTX.Process(target=ndring_producer, args=(name, shape, seconds))
    p.start()
    # The consumer iterates (`for a in rx`: each item as `recv()` would return it, until the
    # ring is closed and drained); the previous array goes back when `a` is rebound. Items are
    # counted by their sequence numbers, not in the loop (bookkeeping is not the transport's).
    items = iter(rx)
    a = next(items)
    checksum(a)
    first, first_seq = time.perf_counter(), ndring.info(a).seq
    for a in items:
        checksum(a)
    rate = (ndring.info(a).seq - first_seq) / (time.perf_counter() - first)
    del a
    p.join()
    return rate


# --- the seed approach: shared_memory slots + a Queue of slot indices --------------------------


def seed_producer(shm_name, shape, n_slots, seconds, free_q, full_q):
    shm = shared_memory.SharedMemory(name=shm_name)
    slots = np.ndarray((n_slots,) + shape, np.uint8, buffer=shm.buf)
    src = np.full(shape, 7, np.uint8)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(64):
            i = free_q.get()
            np.copyto(slots[i], src)
            full_q.put(i)
    full_q.put(None)
    del slots
    shm.close()


def run_seed(shape, n_slots, seconds):
    size = n_slots * int(np.prod(shape))
    shm = shared_memory.SharedMemory(create=True, size=size)
    slots = np.ndarray((n_slots,) + shape, np.uint8, buffer=shm.buf)
    free_q, full_q = CTX.Queue(), CTX.Queue()
    for i in range(n_slots):
        free_q.put(i)
    p = CTX.Process(
        target=seed_producer, args=(shm.name, shape, n_slots, seconds, free_q, full_q)
    )
    p.start()
    i = full_q.get()
    checksum(slots[i])
    free_q.put(i)
    n, first = 0, time.perf_counter()
    while True:
        i = full_q.get()
        if i is None:
            break
        checksum(slots[i])
        free_q.put(i)
        n += 1
    rate = n / (time.perf_counter() - first)
    p.join()
    del slots
    shm.close()
    shm.unlink()
    return rate


# --- pickled arrays through a Queue ----------------------------------------------------------


def pickle_producer(shape, seconds, q):
    src = np.full(shape, 7, np.uint8)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(64):
            q.put(src)
    q.put(None)


def run_pickle(shape, slots, seconds):
    q = CTX.Queue(maxsize=slots)
    p = CTX.Process(target=pickle_producer, args=(shape, seconds, q))
    p.start()
    checksum(q.get())
    n, first = 0, time.perf_counter()
    while True:
        a = q.get()
        if a is None:
            break
        checksum(a)
        n += 1
    rate = n / (time.perf_counter() - first)
    p.join()
    return rate


# --- recv + release per item -----------------------------------------------------------------


def recv_release_us(items=4096):
    name = f"/ndr-bench-rr-{os.getpid()}"
    tx = ndring.Producer.create(name, shape=SMALL, dtype=np.uint8, slots=items)
    rx = ndring.Consumer.open(name)
    src = np.zeros(SMALL, np.uint8)
    for _ in range(items):
        tx.send(src)
    t = time.perf_counter()
    for _ in range(items):
        a = rx.recv()
        del a
    return (time.perf_counter() - t) / items * 1e6


def checksum_only_rate(items=20000):
    """The consumer's own ceiling on 64-byte arrays: its loop with the checksum alone, over one
    array in one process (no transport), items/s."""
    a = np.full(SMALL, 7, np.uint8)
    t = time.perf_counter()
    for _ in range(items):
        checksum(a)
    return items / (time.perf_counter() - t)


def work_only_rate_w3(seconds=0.5):
    """The work every transport pays on frames, in one process: copy a frame into one of 4
    buffers (in turn) and read it back with the checksum, frames/s (no transport, no overlap of
    the two steps)."""
    src = np.full(W3, 7, np.uint8)
    bufs = [np.empty(W3, np.uint8) for _ in range(4)]
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        b = bufs[n % 4]
        np.copyto(b, src)
        checksum(b)
        n += 1
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--small-slots", type=int, default=1024, help="depth for 64-byte arrays")
    ap.add_argument(
        "--only",
        help="one transport and workload, e.g. ndring:64 or seed:1080p (for profiling)",
    )
    args = ap.parse_args()
    workloads = [
        ("W3 1080p, 4 slots (frames/s)", "1080p", W3, 4),
        (f"64-byte arrays, {args.small_slots} slots (items/s)", "64", SMALL, args.small_slots),
    ]
    runners = [("ndring", run_ndring), ("seed shm+Queue", run_seed), ("pickle Queue", run_pickle)]
    if args.only:
        r, w = args.only.split(":")
        run = dict((k.split()[0], f) for k, f in runners)[r]
        (_, _, shape, slots) = next(x for x in workloads if x[1] == w)
        for _ in range(args.rounds):
            print(f"{args.only}: {run(shape, slots, args.seconds):,.0f}/s", flush=True)
        return
    results = {(w, r): [] for w, *_ in workloads for r, _ in runners}
    rr, ceil, work, states = [], [], [], []
    print(
        f"ndring Python bench: {os.cpu_count()} CPUs, {args.rounds} rounds of {args.seconds} s "
        "per variant; host state = cache-line round trip between two threads (median of 2000)"
    )
    for rnd in range(args.rounds):
        load = os.getloadavg()
        line = [f"round {rnd + 1} (load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"]
        rtts = []
        for w, short, shape, slots in workloads:
            rtt = _line_round_trip_ns()
            rtts.append(rtt)
            line.append(f"[line {rtt} ns]")
            for r, run in runners:
                rate = run(shape, slots, args.seconds)
                results[(w, r)].append(rate)
                line.append(f"{r} {short}: {rate:,.0f}")
        rr.append(recv_release_us())
        ceil.append(checksum_only_rate())
        work.append(work_only_rate_w3())
        line.append(
            f"recv+release {rr[-1]:.2f} us; checksum alone 64: {ceil[-1]:,.0f}; "
            f"copy+checksum alone 1080p: {work[-1]:,.0f}"
        )
        states.append(rtts)
        print("; ".join(line), flush=True)
    print()
    # Ratios are taken within each round (same host state), then the median over rounds.
    print("| workload | ndring | seed shm + Queue | pickle Queue | ndring / seed | ndring / pickle |")
    print("|---|---|---|---|---|---|")
    for w, *_ in workloads:
        med = {r: statistics.median(results[(w, r)]) for r, _ in runners}
        nd = results[(w, "ndring")]
        per_round = [a / b for a, b in zip(nd, results[(w, "seed shm+Queue")])]
        vs_seed = statistics.median(per_round)
        vs_pickle = statistics.median(a / b for a, b in zip(nd, results[(w, "pickle Queue")]))
        print(
            f"| {w} | {med['ndring']:,.0f} | {med['seed shm+Queue']:,.0f} | "
            f"{med['pickle Queue']:,.0f} | {vs_seed:.2f}x ({min(per_round):.2f}-"
            f"{max(per_round):.2f}) | {vs_pickle:.1f}x |"
        )
    print(
        f"| recv + release, 64 B, per item | {statistics.median(rr):.2f} us "
        f"({min(rr):.2f}-{max(rr):.2f}) | | | | |"
    )
    small = workloads[1][0]
    ceil_vs_seed = statistics.median(
        c / b for c, b in zip(ceil, results[(small, "seed shm+Queue")])
    )
    print(
        f"| checksum alone, 64 B (the consumer's ceiling, no transport) | "
        f"{statistics.median(ceil):,.0f} items/s | | | {ceil_vs_seed:.2f}x | |"
    )
    print(
        f"| copy + checksum alone, 1080p (one process, 4 buffers in turn, no transport) | "
        f"{statistics.median(work):,.0f} frames/s | | | | |"
    )
    flat = [x for r in states for x in r]
    print(f"cache-line round trip over the run: {min(flat)}-{max(flat)} ns (median {statistics.median(flat):.0f})")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
