"""Broadcast rings from Python: lag reported exactly, frames copied out with their info."""

import multiprocessing as mp

import numpy as np
import pytest

import ndring
import workers


def test_lagged_subscriber_is_told_how_many_it_missed(name):
    w = ndring.BroadcastWriter.create(name, shape=2, dtype=np.uint32, slots=8)
    s = ndring.Subscriber.open(name, start="oldest")
    for i in range(20):
        w.send(np.array([i, i], np.uint32), meta=bytes([i]))
    with pytest.raises(ndring.Lagged) as e:
        s.recv(timeout=5)
    assert e.value.missed == 12 and "12" in str(e.value)
    a = s.recv(timeout=5)
    assert list(a) == [12, 12]
    info = ndring.info(a)
    assert (info.seq, info.meta) == (13, bytes([12]))
    assert s.missed_total == 12


def test_subscriber_follows_and_sees_close(name):
    with ndring.BroadcastWriter.create(name, shape=(2, 2), dtype=np.float64, slots=4) as w:
        s = ndring.Subscriber.open(name)
        w.send(np.eye(2))
        assert np.array_equal(s.recv(timeout=5), np.eye(2))
        with pytest.raises(ndring.Timeout):
            s.recv(timeout=0.01)
        w.send(np.eye(2) * 2)
        w.send(np.eye(2) * 3)
        assert np.array_equal(s.latest(timeout=5), np.eye(2) * 3)
        w.close()
        with pytest.raises(ndring.Closed):
            s.recv(timeout=5)


def test_iterating_a_subscriber_follows_until_close(name):
    with ndring.BroadcastWriter.create(name, shape=2, dtype=np.uint16, slots=8) as w:
        s = ndring.Subscriber.open(name, start="oldest")
        for i in range(3):
            w.send(np.full(2, i, np.uint16))
        w.close()
        assert [int(f[0]) for f in s] == [0, 1, 2]


def test_bad_start(name):
    ndring.BroadcastWriter.create(name, shape=1, dtype=np.uint8)
    with pytest.raises(ValueError):
        ndring.Subscriber.open(name, start="middle")


def test_skipped_numbers_reach_a_subscriber_in_another_process_as_lagged(name):
    """A relay's `skip` (frames lost upstream): a subscriber in a child process gets `Lagged`
    exactly where frames are missing, the lost end too, before `Closed`."""
    ctx = mp.get_context("spawn")
    w = ndring.BroadcastWriter.create(name, shape=2, dtype=np.uint8, slots=8)
    out = ctx.Queue()
    p = ctx.Process(target=workers.follow_broadcast, args=(name, out))
    p.start()
    try:
        assert out.get(timeout=60) == "attached"
        w.send(np.array([1, 1], np.uint8))
        assert w.skip(2) == 3
        w.send(np.array([4, 4], np.uint8))
        assert w.skip(1) == 5
        w.close()
        assert out.get(timeout=60) == [1, "lagged 2", 4, "lagged 1", "closed"]
    finally:
        p.join(60)
        assert p.exitcode == 0
