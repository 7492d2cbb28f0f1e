"""Functions run in other processes by the tests (importable by spawned children)."""

import numpy as np

import ndring


def drain(name):
    """An MPMC worker: receives until the ring is closed; returns the item ids it got."""
    got = []
    with ndring.Consumer.open(name, timeout=30) as rx:
        while True:
            try:
                a = rx.recv(timeout=60)
            except ndring.Closed:
                return got
            assert np.all(a == a[0]), "item torn"
            got.append(int(a[0]))
            # Release before waiting again: on an MPMC ring, an item held while waiting can be
            # the one whose slot the producers need next (then recv raises TooManyLeases).
            del a


def use_inherited(handle, queue):
    """A forked child using a handle its parent opened: reports the error it gets."""
    try:
        handle.recv(timeout=0)
        queue.put("no error")
    except ndring.Error as e:
        queue.put(str(e))


def produce(name, count, shape):
    """A producer in another process: item i filled with i % 256, metadata i (8 bytes)."""
    with ndring.Producer.open(name, timeout=30) as tx:
        for i in range(count):
            tx.send(np.full(shape, i % 256, dtype=np.uint8), meta=i.to_bytes(8, "little"))
        tx.close()


def follow_broadcast(name, out):
    """Subscribes to `name` from the oldest frame and reads until Closed; puts "attached", then
    what it saw: each frame's first element, "lagged N", "closed"."""
    sub = ndring.Subscriber.open(name, start="oldest", timeout=30)
    out.put("attached")
    seen = []
    while True:
        try:
            seen.append(int(sub.recv(timeout=30)[0]))
        except ndring.Lagged as e:
            seen.append(f"lagged {e.missed}")
        except ndring.Closed:
            seen.append("closed")
            break
    out.put(seen)
