"""ndring.SharedArray against the programs it replaces, at the seeds' own sizes, interleaved
round by round in one run. Not a test: prints a table.

    python python/bench/shared_array.py [--rounds 3] [--sizes 1000,10000] [--workers 1,2,4]
    python python/bench/shared_array.py --blocks [--rounds 9] [--compare OTHER_PYTHON]

Programs (issue 24's seeds):
* rows: an N x N float64 array copied into shared memory, its rows summed by a Pool of 1, 2 and
  4 workers, the handle passed in every pool.map argument (as the seed does);
* tiles: the mean and standard deviation of each of 10 tiles of an N x N image, by a Pool.

Each is written three ways: ndring.SharedArray (from_array; rows read through as_array(), tiles
under `with sa.read()`, as python/examples/shared_array.py does), multiprocessing.shared_memory
+ numpy (the seed: a named block wrapped in np.ndarray; a worker attaches by name once, in a
cache, and unregisters it from the resource tracker), and the `shared-memory-array` package
(SharedMemoryManager + SharedMemoryArray.copy, as its README does). Wall time covers copying the
array in, the pool.map and the removal; each run gets a fresh pool (fork), started before the
clock starts.

Memory: each worker reads its unique set size (USS: Private_Clean + Private_Dirty of
/proc/self/smaps_rollup) at the end of each pool.map chunk; the table gives the sum over the
workers of each one's largest, beside the array's size.

Each round prints the load average and the host state (the cache-line round trip between two
threads, fast ~100 ns, slow ~500 ns): compare rows of one state. Also measured: an uncontended
`with sa.read()` / `with sa.write()` enter + exit, beside `with threading.Lock()`.

--blocks: only the uncontended blocks, timeit-style (a loop of --iters blocks, timed --reps
times in each round, the median kept), one fresh process per round: `with sa.read():`,
`with sa.read() as a:`, `with sa.write():`, `with sa.write() as a:`, beside `with lock:` (a
`threading.Lock`) and `with nullcontext:` in the same process, so that each figure has its
ratio to the lock of its own round. --compare OTHER_PYTHON runs every round under that
interpreter too (another venv with another ndring wheel: the build before a change), the two
interleaved and their order alternated round by round. Needs numpy only.
"""

import argparse
import contextlib
import gc
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import threading
import time
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.managers import SharedMemoryManager

import numpy as np

import ndring
from ndring._ndring import _line_round_trip_ns

CTX = mp.get_context("fork")
N_TILES = 10


def uss_kib():
    """This process's unique set size in KiB (pages no other process maps)."""
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


def chunk_of(n, workers):
    """pool.map's chunk size for n items on `workers` workers (its own formula)."""
    c, extra = divmod(n, workers * 4)
    return c + 1 if extra else c


def sample(i, n, chunk):
    """At the end of a chunk: (pid, USS) for the memory column; else None."""
    if (i + 1) % chunk == 0 or i == n - 1:
        return (os.getpid(), uss_kib())
    return None


# --- the three ways, worker side ----------------------------------------------------------------


def nd_row(args):
    sa, i, n, chunk = args
    return sa.as_array()[i].sum(), sample(i, n, chunk)


def nd_tile(args):
    sa, y0, y1 = args
    with sa.read() as img:
        r = (img[y0:y1].mean(), img[y0:y1].std())
    return r, (os.getpid(), uss_kib())


_ATTACHED = {}


def attach(name, shape):
    """The seed's attach (SharedMemory by name, wrapped in np.ndarray), once per worker."""
    if name not in _ATTACHED:
        shm = shared_memory.SharedMemory(name=name)
        # Python 3.11 registers an attached block with the resource tracker, which would unlink
        # it when this worker exits: the usual workaround.
        resource_tracker.unregister(shm._name, "shared_memory")
        _ATTACHED.clear()
        _ATTACHED[name] = (shm, np.ndarray(shape, dtype=np.float64, buffer=shm.buf))
    return _ATTACHED[name][1]


def shm_row(args):
    name, shape, i, n, chunk = args
    return attach(name, shape)[i].sum(), sample(i, n, chunk)


def shm_tile(args):
    name, shape, y0, y1 = args
    img = attach(name, shape)
    return (img[y0:y1].mean(), img[y0:y1].std()), (os.getpid(), uss_kib())


def sma_row(args):
    sa, i, n, chunk = args
    return sa.as_array()[i].sum(), sample(i, n, chunk)


def sma_tile(args):
    sa, y0, y1 = args
    img = sa.as_array()
    return (img[y0:y1].mean(), img[y0:y1].std()), (os.getpid(), uss_kib())


# --- the three ways, owner side -----------------------------------------------------------------


def rows_args(handle, n, workers):
    chunk = chunk_of(n, workers)
    return [(*handle, i, n, chunk) for i in range(n)]


def tiles_args(handle, n):
    h = n // N_TILES
    return [(*handle, k * h, (k + 1) * h) for k in range(N_TILES)]


def run_ndring(data, pool, workers, program):
    name = f"/ndr-bench-sa-{os.getpid()}"
    n = data.shape[0]
    t = time.perf_counter()
    with ndring.SharedArray.from_array(name, data) as sa:
        if program == "rows":
            out = pool.map(nd_row, rows_args((sa,), n, workers))
        else:
            out = pool.map(nd_tile, tiles_args((sa,), n))
    return time.perf_counter() - t, out


def run_shm(data, pool, workers, program):
    n = data.shape[0]
    t = time.perf_counter()
    shm = shared_memory.SharedMemory(create=True, size=data.nbytes)
    try:
        a = np.ndarray(data.shape, dtype=data.dtype, buffer=shm.buf)
        np.copyto(a, data)
        handle = (shm.name, data.shape)
        if program == "rows":
            out = pool.map(shm_row, rows_args(handle, n, workers))
        else:
            out = pool.map(shm_tile, tiles_args(handle, n))
        del a
    finally:
        shm.close()
        shm.unlink()
    return time.perf_counter() - t, out


def run_sma(data, pool, workers, program):
    from shared_memory_array import SharedMemoryArray

    n = data.shape[0]
    t = time.perf_counter()
    with SharedMemoryManager() as manager:
        sa = SharedMemoryArray.copy(manager, data)
        if program == "rows":
            out = pool.map(sma_row, rows_args((sa,), n, workers))
        else:
            out = pool.map(sma_tile, tiles_args((sa,), n))
        sa.shm.close()
        del sa
    return time.perf_counter() - t, out


WAYS = [
    ("ndring", run_ndring),
    ("shared_memory+numpy", run_shm),
    ("shared-memory-array", run_sma),
]


def check(program, data, out):
    if program == "rows":
        got = sum(r for r, _ in out)
        assert np.isclose(got, data.sum(), rtol=1e-9), (got, data.sum())
    else:
        h = data.shape[0] // N_TILES
        assert np.isclose(out[0][0][0], data[:h].mean())


def uss_sum_mib(out):
    peak = {}
    for _, s in out:
        if s is not None:
            pid, kib = s
            peak[pid] = max(peak.get(pid, 0), kib)
    return sum(peak.values()) / 1024, len(peak)


def lock_us(iters=100_000):
    """Uncontended enter + exit of `with sa.read()`, `with sa.write()`, and `with
    threading.Lock()` beside them (µs per block)."""
    name = f"/ndr-bench-lock-{os.getpid()}"
    res = {}
    lock = threading.Lock()
    with ndring.SharedArray.create(name, shape=(64, 8), dtype=np.float64) as sa:
        for label, enter in (("read", sa.read), ("write", sa.write), ("Lock", lambda: lock)):
            for _ in range(iters // 10):  # warm up
                with enter():
                    pass
            t = time.perf_counter()
            for _ in range(iters):
                with enter():
                    pass
            res[label] = (time.perf_counter() - t) / iters * 1e6
    return res


def free_mib():
    with open("/proc/meminfo") as f:
        info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    return info["MemAvailable"] // 1024


BLOCK_CASES = (
    "with sa.read():",
    "with sa.read() as a:",
    "with sa.write():",
    "with sa.write() as a:",
    "with lock: (threading.Lock)",
    "with nullcontext:",
)


def blocks_round(iters, reps):
    """One round of --blocks, in this process: {case: (CPU, wall) µs per block, the medians over
    `reps` loops}. The CPU time (this thread's) leaves out the time the thread was not running,
    which on a loaded host is most of the spread of the wall time."""
    name = f"/ndr-bench-blocks-{os.getpid()}"
    lock = threading.Lock()
    null = contextlib.nullcontext()
    with ndring.SharedArray.create(name, shape=(64, 8), dtype=np.float64) as sa:
        read, write = sa.read, sa.write

        def read_(n):
            for _ in range(n):
                with read():
                    pass

        def read_as(n):
            for _ in range(n):
                with read() as a:  # noqa: F841 - bound, as real code binds it
                    pass

        def write_(n):
            for _ in range(n):
                with write():
                    pass

        def write_as(n):
            for _ in range(n):
                with write() as a:  # noqa: F841
                    pass

        def lock_(n):
            for _ in range(n):
                with lock:
                    pass

        def null_(n):
            for _ in range(n):
                with null:
                    pass

        loops = dict(zip(BLOCK_CASES, (read_, read_as, write_, write_as, lock_, null_)))
        cpu = {k: [] for k in loops}
        wall = {k: [] for k in loops}
        for f in loops.values():
            f(iters // 10)  # warm up
        gc.collect()
        for _ in range(reps):
            for k, f in loops.items():
                t, c = time.perf_counter(), time.thread_time()
                f(iters)
                cpu[k].append((time.thread_time() - c) / iters * 1e6)
                wall[k].append((time.perf_counter() - t) / iters * 1e6)
    return {k: (statistics.median(cpu[k]), statistics.median(wall[k])) for k in loops}


def blocks_main(args):
    pythons = [("this", sys.executable)]
    if args.compare:
        pythons.append(("compare", args.compare))
    print(
        f"uncontended blocks: {os.cpu_count()} CPUs, {args.rounds} rounds, {args.reps} loops of "
        f"{args.iters} blocks a round (median kept); interpreters: "
        + ", ".join(f"{label} = {py} (ndring from {version_of(py)})" for label, py in pythons)
    )
    res = {label: [] for label, _ in pythons}
    lock = BLOCK_CASES[4]
    for rnd in range(args.rounds):
        order = pythons if rnd % 2 == 0 else pythons[::-1]
        load = os.getloadavg()
        line = [f"round {rnd + 1} (load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f})"]
        for label, py in order:
            out = subprocess.run(
                [py, os.path.abspath(__file__), "--blocks-round", "--iters", str(args.iters),
                 "--reps", str(args.reps)],
                check=True, capture_output=True, text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            res[label].append(r)
            line.append(
                f"{label}: "
                + ", ".join(f"{k} {c:.3f} us CPU / {w:.3f} wall" for k, (c, w) in r.items())
            )
        print("\n  ".join(line), flush=True)
    print()
    print(
        "Per case, medians over the rounds (min-max): CPU µs per block (enter + exit), its ratio "
        "to `with lock:` of the same round, wall µs per block."
    )
    print(
        "| case | "
        + " | ".join(f"{label}: CPU µs | {label}: x lock | {label}: wall µs" for label, _ in pythons)
        + " |"
    )
    print("|---|" + "---|---|---|" * len(pythons))
    for k in BLOCK_CASES:
        cells = []
        for label, _ in pythons:
            c = [r[k][0] for r in res[label]]
            x = [r[k][0] / r[lock][0] for r in res[label]]
            w = [r[k][1] for r in res[label]]
            cells.append(
                f"{statistics.median(c):.3f} ({min(c):.3f}-{max(c):.3f}) | "
                f"{statistics.median(x):.2f} ({min(x):.2f}-{max(x):.2f}) | "
                f"{statistics.median(w):.3f} ({min(w):.3f}-{max(w):.3f})"
            )
        print(f"| {k} | " + " | ".join(cells) + " |")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def version_of(py):
    """Where `py` imports ndring from."""
    return subprocess.run(
        [py, "-c", "import ndring, os; print(os.path.dirname(ndring.__file__))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--tile-workers", type=int, default=os.cpu_count())
    ap.add_argument("--blocks", action="store_true", help="only the uncontended with blocks")
    ap.add_argument("--compare", help="--blocks: also run each round under this interpreter")
    ap.add_argument("--iters", type=int, default=20_000, help="--blocks: blocks a loop")
    ap.add_argument("--reps", type=int, default=5, help="--blocks: loops a round")
    ap.add_argument("--blocks-round", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.blocks_round:
        print(json.dumps(blocks_round(args.iters, args.reps)))
        return
    if args.blocks:
        args.rounds = args.rounds or 9
        blocks_main(args)
        return
    args.rounds = args.rounds or 3
    from shared_memory_array import SharedMemoryArray  # noqa: F401 - needed by run_sma
    sizes = [int(x) for x in args.sizes.split(",")]
    workers = [int(x) for x in args.workers.split(",")]

    need = 3 * max(sizes) ** 2 * 8 // 2**20  # the source, the shared copy, slack
    shm_free = os.statvfs("/dev/shm")
    shm_mib = shm_free.f_bavail * shm_free.f_frsize // 2**20
    print(
        f"SharedArray bench: {os.cpu_count()} CPUs, {args.rounds} rounds; available memory "
        f"{free_mib()} MiB, /dev/shm free {shm_mib} MiB, largest array "
        f"{max(sizes) ** 2 * 8 / 1e6:.0f} MB (needs ~{need} MiB)"
    )
    assert free_mib() > need and shm_mib > max(sizes) ** 2 * 8 // 2**20, "does not fit"

    # The resource tracker before any pool, so that the workers share it (a worker that
    # attaches a SharedMemory would otherwise start a tracker of its own).
    resource_tracker.ensure_running()
    rng = np.random.default_rng(0)
    data = {n: rng.random((n, n)) for n in sizes}
    cases = [("rows", n, w) for n in sizes for w in workers]
    cases += [("tiles", n, args.tile_workers) for n in sizes if n == max(sizes)]
    times = {(c, way): [] for c in cases for way, _ in WAYS}
    mem = {(c, way): [] for c in cases for way, _ in WAYS}
    locks = []
    rtts = []
    for rnd in range(args.rounds):
        load = os.getloadavg()
        rtt = _line_round_trip_ns()
        rtts.append(rtt)
        line = [f"round {rnd + 1} (load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}) [line {rtt} ns]"]
        for c in cases:
            program, n, w = c
            # Rotate which way goes first, so that none always runs on a cold cache.
            order = WAYS[rnd % 3 :] + WAYS[: rnd % 3]
            cell = []
            for way, run in order:
                gc.collect()
                # A fresh pool for every run (not timed): a worker that kept a mapping of an
                # earlier run's array, removed since, would count it in its USS.
                pool = CTX.Pool(w)
                try:
                    dt, out = run(data[n], pool, w, program)
                finally:
                    pool.terminate()
                    pool.join()
                check(program, data[n], out)
                times[(c, way)].append(dt)
                m, _ = uss_sum_mib(out)
                mem[(c, way)].append(m)
                cell.append(f"{way} {dt * 1e3:.0f} ms/{m:.0f} MiB")
            line.append(f"{program} {n} x{w}: " + ", ".join(cell))
        lk = lock_us()
        locks.append(lk)
        line.append(
            f"uncontended: read {lk['read']:.2f} us, write {lk['write']:.2f} us, "
            f"threading.Lock {lk['Lock']:.3f} us"
        )
        print("\n  ".join(line), flush=True)

    print()
    print(
        "| program | N | workers | ndring | shared_memory+numpy | shared-memory-array | "
        "ndring vs shm (x) | ndring vs sma (x) | workers' USS sum MiB: ndring / shm / sma | "
        "array MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        program, n, w = c
        med = {way: statistics.median(times[(c, way)]) * 1e3 for way, _ in WAYS}
        # speed ratio (their time / ours) within each round, then the median: > 1 = ndring faster
        vs = {}
        for way in ("shared_memory+numpy", "shared-memory-array"):
            r = [b / a for a, b in zip(times[(c, "ndring")], times[(c, way)])]
            vs[way] = f"{statistics.median(r):.2f} ({min(r):.2f}-{max(r):.2f})"
        m = " / ".join(f"{statistics.median(mem[(c, way)]):.0f}" for way, _ in WAYS)
        print(
            f"| {program} | {n} | {w} | {med['ndring']:.0f} ms | "
            f"{med['shared_memory+numpy']:.0f} ms | {med['shared-memory-array']:.0f} ms | "
            f"{vs['shared_memory+numpy']} | {vs['shared-memory-array']} | {m} | "
            f"{n * n * 8 / 2**20:.0f} |"
        )
    for k, label in (("read", "with sa.read()"), ("write", "with sa.write()"), ("Lock", "with threading.Lock()")):
        v = [lk[k] for lk in locks]
        print(f"| {label} enter + exit | {statistics.median(v):.3f} us ({min(v):.3f}-{max(v):.3f}) |")
    print(f"cache-line round trip over the run: {min(rtts)}-{max(rtts)} ns (median {statistics.median(rtts):.0f})")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
