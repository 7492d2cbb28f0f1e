"""Dead-peer recovery from Python, whose calls wait in 50 ms slices (to see Ctrl-C between
them): a peer SIGKILLed while it holds a slot or a claim is recovered within about the grace
period (500 ms), whether the survivor waits in one call, with a timeout, or polls."""

import os
import signal
import time

import numpy as np
import pytest

import ndring

# Deadlock guard, not a timing check: recovery takes about the grace period (500 ms).
STALL = 60.0


def fork_until_ready(child):
    """Forks; the child runs `child(w)` (which signals readiness by writing to `w`, and returns
    what it must keep holding) and then sleeps until killed. Returns the child's pid once it is
    ready."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            held = child(w)
            time.sleep(STALL)
            del held
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert f.read(1) == b"!", "the child never reached its point"
    return pid


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def until(call):
    """Calls `call()` until it stops raising Timeout, for at most STALL seconds."""
    start = time.monotonic()
    while True:
        try:
            return call()
        except ndring.Timeout:
            assert time.monotonic() - start < STALL, "the dead peer was never recovered"


WAYS = {
    # One call that may wait as long as it takes (the binding still waits in 50 ms slices).
    "blocking": lambda f: f(None),
    # A stoppable worker's loop: timeouts far shorter than the grace period.
    "sliced": lambda f: until(lambda: f(0.02)),
    # Polling: no wait at all.
    "polling": lambda f: until(lambda: f(0)),
}


@pytest.mark.parametrize("way", WAYS)
def test_consumer_killed_holding_a_slot_is_recovered_by_a_waiting_producer(name, way):
    tx = ndring.Producer.create(name, shape=(8,), dtype=np.uint8, slots=2, kind="mpmc")
    rx = ndring.Consumer.open(name)
    tx.send(np.zeros(8, np.uint8))

    def hold(w):
        c = ndring.Consumer.open(name)
        a = c.recv()
        assert a[0] == 0
        os.write(w, b"!")
        return c, a

    kill(fork_until_ready(hold))
    tx.send(np.ones(8, np.uint8))
    a = rx.recv(timeout=STALL)
    assert a[0] == 1
    del a
    # The next claim needs the dead consumer's slot.
    WAYS[way](lambda t: tx.send(np.full(8, 2, np.uint8), timeout=t))
    assert rx.recv(timeout=STALL)[0] == 2
    tx.close()
    with pytest.raises(ndring.Closed):
        rx.recv(timeout=STALL)  # item 0 is not delivered again


@pytest.mark.parametrize("way", WAYS)
def test_producer_killed_inside_a_claim_is_recovered_by_a_waiting_consumer(name, way):
    rx = ndring.Consumer.create(name, shape=(8,), dtype=np.uint8, slots=4, kind="mpmc")
    tx = ndring.Producer.open(name)

    def claim(w):
        p = ndring.Producer.open(name)
        c = p.claim()
        c.__enter__()[:] = 7
        os.write(w, b"!")
        return p, c

    kill(fork_until_ready(claim))
    tx.send(np.ones(8, np.uint8))
    a = WAYS[way](lambda t: rx.recv(timeout=t))
    assert a[0] == 1, "the dead producer's claim is skipped, never delivered"
    del a
    tx.close()
    with pytest.raises(ndring.Closed):
        rx.recv(timeout=STALL)
