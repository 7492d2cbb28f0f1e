"""A multiprocessing.Pool of workers sharing one MPMC ring: each item is processed exactly once.

    python python/examples/pool.py

Only the ring's name travels to the workers (handles cannot be pickled); each worker opens its own
Consumer, works on the zero-copy array, and releases it (``del``) before waiting for the next.
"""

import multiprocessing as mp
import os

import numpy as np

import ndring


def worker(name):
    done = []
    with ndring.Consumer.open(name, timeout=10) as rx:
        while True:
            try:
                item = rx.recv()
            except ndring.Closed:
                return done
            done.append((ndring.info(item).seq, float(item.mean())))
            del item  # release before waiting again (see the README)


def main():
    name = f"/ndring-py-pool-{os.getpid()}"
    with ndring.Producer.create(name, shape=(256, 256), dtype=np.float32, slots=8, kind="mpmc") as tx:
        with mp.Pool(4) as pool:
            results = pool.map_async(worker, [name] * 4)
            for i in range(1000):
                tx.send(np.full((256, 256), i, np.float32))
            tx.close()
            per_worker = results.get()
    seqs = sorted(seq for part in per_worker for seq, _ in part)
    assert seqs == list(range(1, 1001))
    print("items per worker:", [len(p) for p in per_worker], "- each of 1000 exactly once")


if __name__ == "__main__":
    main()
