"""Functions run in other processes by test_asyncio.py (importable by spawned children)."""

import os
import random
import signal
import time

import numpy as np

import ndring

STALL = 120.0


def wait_sleepers(handle, n, side):
    """Until `n` handles sleep on the ring (side 0: consumers / subscribers, 1: producers)."""
    end = time.monotonic() + STALL
    while handle._sleepers()[side] < n:
        assert time.monotonic() < end, "the futures never registered"
        time.sleep(0.001)


def produce(name, count, pause):
    """Sends items 0..count (item i: [i, i]), pausing 1 ms every `pause` items; then closes."""
    with ndring.Producer.open(name, timeout=30) as tx:
        time.sleep(0.05)
        for i in range(count):
            tx.send(np.array([i, i], np.int64), timeout=STALL)
            if pause and i % pause == 0:
                time.sleep(0.001)
        tx.close()


def publish_random(names, per_ring, seed):
    """Publishes `per_ring` items to each ring of `names` in a random order (item: [ring,
    index]), with short pauses so that the consumer sleeps often; then closes every ring."""
    txs = [ndring.Producer.open(n, timeout=30) for n in names]
    rng = random.Random(seed)
    order = [k for k in range(len(names)) for _ in range(per_ring)]
    rng.shuffle(order)
    sent = [0] * len(names)
    for j, k in enumerate(order):
        txs[k].send(np.array([k, sent[k]], np.int64), timeout=STALL)
        sent[k] += 1
        if j % 16 == 0:
            time.sleep(0.0005)
    for tx in txs:
        tx.close()
        tx.detach()


def hold(name, action, pending):
    """Opens `name` as a producer; once `pending` consumers sleep on it, closes it, leaves, or
    dies by SIGKILL (as a crash would)."""
    tx = ndring.Producer.open(name, timeout=30)
    wait_sleepers(tx, pending, 0)
    if action == "close":
        tx.close()
    elif action == "drop":
        tx.detach()
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def write_hold(name, action, pending):
    """Creates the broadcast ring `name`; once `pending` subscribers sleep on it, closes it or
    dies by SIGKILL."""
    w = ndring.BroadcastWriter.create(name, shape=2, dtype=np.int64)
    wait_sleepers(w, pending, 0)
    if action == "close":
        w.close()
    else:
        os.kill(os.getpid(), signal.SIGKILL)


def drain(name, count):
    """Opens `name` as a consumer; once a producer sleeps on the full ring, receives `count`
    items (item i: [i, i])."""
    with ndring.Consumer.open(name, timeout=30) as rx:
        wait_sleepers(rx, 1, 1)
        for i in range(count):
            a = rx.recv(timeout=STALL)
            assert a.tolist() == [i, i]
            del a


def create_take_and_hang(name, request, reply, ready):
    """Creates the request/reply segment `name` as its only server, says so, takes one request,
    says which (its [0, 0, 1] byte), and waits to be killed holding it."""
    srv = ndring.Server.create(name, request=request, reply=reply, clients=2)
    ready.put(True)
    req = srv.recv(timeout=STALL)
    ready.put(int(req.array[0, 0, 1]))
    time.sleep(STALL)
    del req
