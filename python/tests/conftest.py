import itertools
import os
import signal
import time

import numpy as np
import pytest

import ndring

_counter = itertools.count()


@pytest.fixture
def name():
    """A ring name unique to this test; removed afterwards if it is still there."""
    n = f"/ndr-pytest-{os.getpid()}-{next(_counter)}"
    yield n
    try:
        ndring.remove(n)
    except ndring.NotFound:
        pass


@pytest.fixture
def make_stale():
    """`make_stale(name)`: a ring `name` whose creator, a forked producer that sent one item and
    never closed, was SIGKILLed (as a crash leaves it). Returns the dead creator's pid."""

    def make(ring):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                tx = ndring.Producer.create(ring, shape=4, dtype=np.uint8)
                tx.send(np.arange(4, dtype=np.uint8))
                os.write(w, b"!")
                time.sleep(60)
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            ready = f.read(1) == b"!"
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert ready, "the producer never created its ring"
        return pid

    return make
