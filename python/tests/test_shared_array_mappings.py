"""ndring.SharedArray's kept mappings: a process keeps the mapping of an array it opened after
the handle closes (a pool worker attaches for every chunk of tasks), never the registration, so
the name's life is unchanged; a kept mapping never stands for a replaced array and never
outlives a removed name."""

import multiprocessing as mp

import numpy as np
import pytest

import array_workers as w
import ndring
from test_shared_array import METHODS, STALL, joined, run, shm


# A process keeps the mapping of an array it opened after the handle closes (a pool worker
# attaches for every chunk of tasks), never the registration: the name's life is unchanged.


def minor_faults():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_reopening_an_array_reuses_the_kept_mapping(name):
    ndring.SharedArray.release_mappings()
    with ndring.SharedArray.create(name, shape=(1024, 512), dtype=np.float64) as owner:
        owner.as_array()[:] = 1
        h = ndring.SharedArray.open(name)
        assert h.as_array().sum() == 1024 * 512  # faults the whole 4 MiB in
        h.close()
        before = minor_faults()
        h = ndring.SharedArray.open(name)
        assert h.as_array().sum() == 1024 * 512
        faults = minor_faults() - before
        h.close()
        # A new mapping of 1024 pages would fault at least 64 times (16 pages a fault at most).
        assert faults < 32, f"{faults} page faults: the array was mapped again"
        assert ndring.SharedArray.release_mappings() == 1
        assert ndring.SharedArray.release_mappings() == 0
    assert not shm(name)


@pytest.mark.parametrize("how", ["close", "del"])
def test_no_mapping_outlives_the_name_in_the_process_that_removed_it(name, how):
    """One process creates, opens and closes a second handle, then closes (or drops) its own: the
    name is gone, and so is the mapping kept from the second handle (no 8 MB left mapped)."""
    ndring.SharedArray.release_mappings()
    sa = ndring.SharedArray.create(name, shape=(1024, 1024), dtype=np.float64)
    with ndring.SharedArray.open(name) as h:
        h.as_array()[0, 0] = 1
    if how == "close":
        sa.close()
    else:
        del sa
    assert not shm(name)
    assert ndring.SharedArray.release_mappings() == 0, "a mapping outlived its removed name"


def test_a_kept_mapping_never_stands_for_a_replaced_array(name):
    with ndring.SharedArray.create(name, shape=(4, 4), dtype=np.int64) as sa:
        sa.as_array()[:] = 1
        with ndring.SharedArray.open(name) as h:
            assert h.as_array().sum() == 16
    assert not shm(name)
    # Same name, same shape, other contents: the kept mapping of the first is not it.
    with ndring.SharedArray.create(name, shape=(4, 4), dtype=np.int64) as sa:
        sa.as_array()[:] = 2
        with ndring.SharedArray.open(name) as h:
            assert h.as_array().sum() == 32
    # Another shape and dtype: checked against the new header, not the kept one.
    with ndring.SharedArray.create(name, shape=(3,), dtype=np.float32):
        with ndring.SharedArray.open(name, shape=(3,), dtype=np.float32) as h:
            assert h.shape == (3,)
        with pytest.raises(ndring.Mismatch):
            ndring.SharedArray.open(name, shape=(4, 4))
    with pytest.raises(ndring.NotFound):
        ndring.SharedArray.open(name)


@pytest.mark.parametrize("method", METHODS)
def test_a_process_keeping_a_mapping_does_not_keep_the_name(name, method):
    ctx = mp.get_context(method)
    go, out = ctx.Event(), ctx.Queue()
    sa = ndring.SharedArray.create(name, shape=(8, 8), dtype=np.float64)
    sa.as_array()[:] = 3
    p = run(ctx, w.open_close_then_report, name, go, out)
    try:
        assert out.get(timeout=STALL) == 192.0
        # The child closed its handle and keeps only the mapping: the owner is the last one out.
        sa.close()
        assert not shm(name), "a mapping kept after close kept the name"
        go.set()
        assert out.get(timeout=STALL) == ("not found", None)
    finally:
        go.set()
        joined(p)


def test_a_pool_worker_attaching_per_task_sees_every_write(name):
    """chunksize=1: every task unpickles (attaches) and drops its handle; rewrites between
    maps reach workers that kept the mapping."""
    data = np.arange(40.0).reshape(8, 5)
    with ndring.SharedArray.from_array(name, data) as sa:
        with mp.get_context("fork").Pool(2) as pool:
            for k in range(3):
                with sa.write() as a:
                    a[:] = data * k
                sums = pool.map(w.sum_row, [(sa, i) for i in range(8)], chunksize=1)
                assert np.allclose(sums, (data * k).sum(axis=1))
    assert not shm(name)
