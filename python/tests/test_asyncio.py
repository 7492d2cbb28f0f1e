"""asyncio: `await rx.arecv()`, `async for`, `await tx.asend(a)` and subscribers, with no thread
per pending call. Cross-process: a producer in another process wakes an awaiting consumer; many
rings awaited at once while another process publishes to random ones, every item received
exactly once; a cancelled `arecv` takes nothing (the next call gets the item) and leaves no
waiter; close, disconnect and a SIGKILLed producer (or writer) wake every pending future."""

import asyncio
import multiprocessing as mp
import os
import random
import signal

import numpy as np
import pytest

import aio_workers
import ndring

STALL = aio_workers.STALL


def spawn(target, *args):
    p = mp.get_context("spawn").Process(target=target, args=args)
    p.start()
    return p


def joined(p, code=0):
    p.join(STALL)
    assert p.exitcode == code, f"child exit code {p.exitcode}"


def threads():
    return len(os.listdir("/proc/self/task"))


def test_a_producer_in_another_process_wakes_an_awaiting_consumer(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.int64, slots=4, spin=0)
    child = spawn(aio_workers.produce, name, 500, 7)

    async def consume():
        got = []
        async for a in rx:
            got.append(a.tolist())
            # The array is the same zero-copy lease `recv()` gives: its base keeps the slot.
            assert ndring.info(a).seq == len(got)
        return got

    got = asyncio.run(asyncio.wait_for(consume(), STALL))
    joined(child)
    assert got == [[i, i] for i in range(500)]
    assert rx._sleepers() == (0, 0), "no waiter left behind"
    rx.close()


def test_many_rings_awaited_at_once_every_item_once(name):
    rings, per_ring = 24, 100
    names = [f"{name}-{k}" for k in range(rings)]
    rxs = [ndring.Consumer.create(n, shape=2, dtype=np.int64, slots=4, spin=0) for n in names]
    try:
        before = threads()
        most = [before]
        child = spawn(aio_workers.publish_random, names, per_ring, random.randrange(1 << 30))

        async def consume(k, rx):
            got = []
            async for a in rx:
                assert a[0] == k, "an item of another ring"
                got.append(int(a[1]))
                most[0] = max(most[0], threads())
            return got

        async def main():
            return await asyncio.gather(*(consume(k, rx) for k, rx in enumerate(rxs)))

        got = asyncio.run(asyncio.wait_for(main(), STALL))
        joined(child)
        for k, items in enumerate(got):
            assert items == list(range(per_ring)), f"ring {k}: every item once, in order"
        assert most[0] <= before + 1, f"{rings} awaited rings cost at most one thread"
        assert all(rx._sleepers() == (0, 0) for rx in rxs)
    finally:
        for rx in rxs:
            rx.close()
        for n in names:
            try:
                ndring.remove(n)
            except ndring.NotFound:
                pass


def test_a_cancelled_arecv_takes_nothing_and_leaves_no_waiter(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.int64, slots=4, spin=0)
    child = spawn(aio_workers.produce, name, 2000, 3)
    rng = random.Random()

    async def consume():
        got, cancelled = [], 0
        while True:
            task = asyncio.ensure_future(rx.arecv())
            done, _ = await asyncio.wait({task}, timeout=rng.random() * 0.0004)
            if not done:
                task.cancel()
            try:
                a = await task
            except asyncio.CancelledError:
                cancelled += 1
                continue
            except ndring.Closed:
                return got, cancelled
            got.append(a.tolist())
            del a

    got, cancelled = asyncio.run(asyncio.wait_for(consume(), STALL))
    joined(child)
    assert got == [[i, i] for i in range(2000)], "every item received once, in order"
    assert cancelled > 0, "some waits were cancelled"
    assert rx._sleepers() == (0, 0), "no waiter left behind"
    rx.close()


def test_keyboard_interrupt_while_awaiting_leaves_no_waiter(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.int64, slots=4, spin=0)
    tx = ndring.Producer.open(name)

    def interrupt():
        raise KeyboardInterrupt

    async def main():
        task = asyncio.ensure_future(rx.arecv())
        while rx._sleepers()[0] == 0:
            await asyncio.sleep(0.001)
        asyncio.get_running_loop().call_soon(interrupt)
        await task

    # As Ctrl-C in asyncio.run: the interrupt leaves the loop, whose shutdown cancels the task.
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main())
    assert rx._sleepers() == (0, 0), "no waiter left behind"
    tx.send(np.array([1, 1], np.int64))
    assert rx.recv(timeout=STALL).tolist() == [1, 1], "the interrupted call took nothing"
    rx.close()
    tx.close()


@pytest.mark.parametrize("action", ["close", "drop", "kill"])
def test_close_disconnect_and_sigkill_wake_every_pending_consumer(name, action):
    n = 4
    rxs = [ndring.Consumer.create(name, shape=2, dtype=np.int64, slots=4, kind="mpmc", spin=0)]
    rxs += [ndring.Consumer.open(name, spin=0) for _ in range(n - 1)]
    child = spawn(aio_workers.hold, name, action, n)

    async def main():
        return await asyncio.gather(*(rx.arecv() for rx in rxs), return_exceptions=True)

    got = asyncio.run(asyncio.wait_for(main(), STALL))
    joined(child, -signal.SIGKILL if action == "kill" else 0)
    expected = ndring.Closed if action == "close" else ndring.Disconnected
    assert all(isinstance(e, expected) for e in got), got
    assert rxs[0]._sleepers() == (0, 0)
    for rx in rxs:
        rx.close()


@pytest.mark.parametrize("action", ["close", "kill"])
def test_close_and_sigkill_wake_every_pending_subscriber(name, action):
    n = 3
    child = spawn(aio_workers.write_hold, name, action, n)
    subs = [ndring.Subscriber.open(name, timeout=30, spin=0) for _ in range(n)]

    async def main():
        return await asyncio.gather(*(s.arecv() for s in subs), return_exceptions=True)

    got = asyncio.run(asyncio.wait_for(main(), STALL))
    joined(child, -signal.SIGKILL if action == "kill" else 0)
    expected = ndring.Closed if action == "close" else ndring.Disconnected
    assert all(isinstance(e, expected) for e in got), got
    assert subs[0]._sleepers() == (0, 0)
    for s in subs:
        s.close()


def test_subscriber_async_for_gets_every_frame(name):
    w = ndring.BroadcastWriter.create(name, shape=2, dtype=np.int64, slots=8)
    sub = ndring.Subscriber.open(name, start="oldest", spin=0)

    async def main():
        async def write():
            for i in range(5):
                w.send(np.array([i, i], np.int64))
                await asyncio.sleep(0.001)
            w.close()

        writer = asyncio.ensure_future(write())
        got = [f.tolist() async for f in sub]
        await writer
        return got

    assert asyncio.run(asyncio.wait_for(main(), STALL)) == [[i, i] for i in range(5)]
    sub.close()
    w.detach()


def test_a_consumer_in_another_process_wakes_an_awaiting_asend(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.int64, slots=2, spin=0)
    child = spawn(aio_workers.drain, name, 200)

    async def main():
        return [await tx.asend(np.array([i, i], np.int64)) for i in range(200)]

    assert asyncio.run(asyncio.wait_for(main(), STALL)) == list(range(1, 201))
    joined(child)
    assert tx._sleepers() == (0, 0), "no waiter left behind"
    tx.close()


def test_a_cancelled_asend_sends_nothing(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.int64, slots=2, spin=0)
    rx = ndring.Consumer.open(name)
    for i in range(2):
        tx.send(np.array([i, i], np.int64))

    async def main():
        task = asyncio.ensure_future(tx.asend(np.array([1, 1], np.int64)))
        while tx._sleepers()[1] == 0:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert tx._sleepers() == (0, 0)
        # A wrong array fails at once, even on a full ring.
        with pytest.raises(ndring.Mismatch):
            await tx.asend(np.zeros(3, np.int64))
        with pytest.raises(ndring.Timeout):
            await tx.asend(np.array([2, 2], np.int64), timeout=0.01)
        assert tx._sleepers() == (0, 0)

    asyncio.run(main())
    assert [rx.recv_copy(timeout=0).tolist() for _ in range(2)] == [[0, 0], [1, 1]]
    with pytest.raises(ndring.Timeout):
        rx.recv(timeout=0)
    rx.close()
    tx.close()


def test_one_pending_call_per_handle_and_detach_wakes_it(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.int64, spin=0)
    tx = ndring.Producer.open(name)

    async def main():
        first = asyncio.ensure_future(rx.arecv())
        while rx._sleepers()[0] == 0:
            await asyncio.sleep(0.001)
        with pytest.raises(RuntimeError, match="awaited by another task"):
            await rx.arecv()
        with pytest.raises(RuntimeError, match="awaited by another task"):
            rx.recv(timeout=0)
        assert rx.held == 0  # getters still work
        rx.detach()
        with pytest.raises(ndring.Error, match="closed"):
            await first

    asyncio.run(asyncio.wait_for(main(), STALL))
    tx.close()


def test_arecv_timeout(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.int64, spin=0)
    tx = ndring.Producer.open(name)

    async def main():
        with pytest.raises(ndring.Timeout):
            await rx.arecv(timeout=0.01)
        assert rx._sleepers() == (0, 0)
        tx.send(np.array([5, 5], np.int64))
        return (await rx.arecv(timeout=0)).tolist()

    assert asyncio.run(main()) == [5, 5]
    rx.close()
    tx.close()
