"""An asyncio program consuming two rings at once, each fed by a producer in another process.

    python python/examples/async_two_rings.py [--items 200]

One task per ring awaits ``rx.arecv()`` through ``async for``: a pending receive costs no thread
(this process's one ndring reactor thread sleeps on both rings' futex words and wakes the event
loop), so the loop stays free for other work, here a ticker. Each array is zero copy, as
``recv()``'s: its slot returns to the ring when the array is gone.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import time

import numpy as np

import ndring


def produce(name, items, period):
    """A producer process: `items` arrays, one every `period` seconds, then closes the ring."""
    with ndring.Producer.open(name, timeout=10) as tx:
        for i in range(items):
            tx.send(np.full((4, 4), i, np.int32))
            time.sleep(period)
        tx.close()


async def consume(label, rx):
    count, total = 0, 0
    async for a in rx:  # until the producer closes the ring and it is drained
        assert np.all(a == count), f"{label}: item {count} out of order"
        count += 1
        total += int(a[0, 0])
        del a  # the slot goes back to the producer
    return label, count, total


async def ticker(stop):
    ticks = 0
    while not stop.is_set():
        ticks += 1
        await asyncio.sleep(0.01)
    return ticks


async def run(rings):
    stop = asyncio.Event()
    tick = asyncio.ensure_future(ticker(stop))
    results = await asyncio.gather(*(consume(label, rx) for label, rx in rings))
    stop.set()
    return results, await tick


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=200)
    args = p.parse_args()
    ctx = mp.get_context("spawn")
    names = {label: f"/ndring-py-async-{label}-{os.getpid()}" for label in ("fast", "slow")}
    rings = [(label, ndring.Consumer.create(n, shape=(4, 4), dtype=np.int32, slots=4)) for label, n in names.items()]
    procs = [
        ctx.Process(target=produce, args=(names["fast"], args.items, 0.0005)),
        ctx.Process(target=produce, args=(names["slow"], args.items // 4, 0.004)),
    ]
    for proc in procs:
        proc.start()
    try:
        results, ticks = asyncio.run(run(rings))
    finally:
        for proc in procs:
            proc.join(30)
        for _, rx in rings:
            rx.close()
    for label, count, total in results:
        print(f"{label}: {count} arrays received (sum of first elements {total})")
    print(f"the event loop ran a ticker {ticks} times meanwhile")
    assert [c for _, c, _ in results] == [args.items, args.items // 4]
    assert all(proc.exitcode == 0 for proc in procs)


if __name__ == "__main__":
    main()
