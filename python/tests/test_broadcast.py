"""Broadcast rings from Python: lag reported exactly, frames copied out with their info."""

import numpy as np
import pytest

import ndring


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
