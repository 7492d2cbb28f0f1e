"""ndring.SharedArray across real processes: the seeds' three programs (a child writing in place,
a Pool summing rows, a Pool computing tile statistics) with handles passed as arguments, the
lock under writers and readers, disjoint row writers, wait_changed, writers and readers
SIGKILLed inside their block, views escaping a block, as_array() after close(), and fork."""

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import warnings
import weakref

import numpy as np
import pytest

import array_workers as w
import ndring

# Deadlock guard, not a timing check.
STALL = 60.0
METHODS = ["fork", "spawn"]


def shm(name):
    return os.path.exists("/dev/shm" + name)


def run(ctx, target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


def joined(p):
    p.join(STALL)
    assert not p.is_alive(), "the child hung"
    assert p.exitcode == 0, f"the child failed (exit code {p.exitcode})"


# --- The seeds' programs -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_a_child_writes_in_place(name, method):
    with ndring.SharedArray.create(name, shape=(5, 5), dtype=np.float64) as sa:
        a = sa.as_array()
        assert a.sum() == 0
        joined(run(mp.get_context(method), w.set_corner, sa))
        assert a[0, 0] == 1 and a.sum() == 1
        # The child attached and left: it did not remove the name.
        assert shm(name)
    del a
    assert not shm(name), "the last handle out did not remove the name"


@pytest.mark.parametrize("method", METHODS)
def test_a_pool_sums_rows(name, method):
    data = np.random.default_rng(1).random((300, 200))
    sa = ndring.SharedArray.from_array(name, data)
    with mp.get_context(method).Pool(2) as pool:
        sums = pool.map(w.sum_row, [(sa, i) for i in range(300)])
    assert np.allclose(sums, data.sum(axis=1))
    assert shm(name), "a worker removed the name"
    sa.close()
    assert not shm(name)


@pytest.mark.parametrize("method", METHODS)
def test_a_pool_computes_tile_statistics(name, method):
    image = np.random.default_rng(2).random((400, 300))
    tiles, h = 10, 40
    with ndring.SharedArray.from_array(name, image) as sa:
        with mp.get_context(method).Pool(2) as pool:
            stats = list(pool.imap(w.tile_stats, [(sa, i * h, (i + 1) * h) for i in range(tiles)]))
    want = [(image[i * h:(i + 1) * h].mean(), image[i * h:(i + 1) * h].std()) for i in range(tiles)]
    assert np.allclose(stats, want)
    assert not shm(name)


def test_from_array_copies_any_strides(name):
    data = np.arange(60, dtype=np.int32).reshape(6, 10)[::-2, 1::3]
    with ndring.SharedArray.from_array(name, data) as sa:
        assert sa.shape == data.shape and sa.dtype == np.int32 and sa.owner
        assert sa.version == 1
        with sa.read() as a:
            assert (a == data).all()
        with ndring.SharedArray.open(name) as other:
            assert not other.owner
            assert (other.as_array() == data).all()


# --- The lock ------------------------------------------------------------------------------


def test_a_writer_and_readers_hammering_the_lock_never_see_a_torn_array(name):
    ctx = mp.get_context("fork")
    rounds = 300
    with ndring.SharedArray.create(name, shape=(64, 1024), dtype=np.int64) as sa:
        out = ctx.Queue()
        readers = [run(ctx, w.read_until, sa, rounds, out) for _ in range(2)]
        writer = run(ctx, w.write_rounds, sa, rounds)
        results = [out.get(timeout=STALL) for _ in readers]
        for p in readers + [writer]:
            joined(p)
        assert sa.version == rounds
    for reads, torn, backwards in results:
        assert reads > 0
        assert torn == 0, f"{torn} of {reads} reads saw a half-written array"
        assert backwards == 0


@pytest.mark.parametrize("method", METHODS)
def test_disjoint_writers_fill_tiles_in_parallel(name, method):
    tiles, rows = 8, 16
    with ndring.SharedArray.create(name, shape=(tiles * rows, 50), dtype=np.uint16) as sa:
        with mp.get_context(method).Pool(4) as pool:
            done = pool.map(w.fill_rows, [(sa, t, rows) for t in range(tiles)])
        assert sorted(done) == list(range(tiles))
        with sa.read() as a:
            for t in range(tiles):
                assert (a[t * rows:(t + 1) * rows] == t).all()
        assert sa.version == tiles


def test_row_writers_hold_disjoint_rows_at_once_and_keep_whole_writers_out(name):
    ctx = mp.get_context("fork")
    with ndring.SharedArray.create(name, shape=(640, 4), dtype=np.uint8) as sa:
        out = ctx.Queue()
        with sa.write(rows=slice(0, 10)) as top:
            top[:] = 1
            joined(run(ctx, w.write_rows_while_held, sa, slice(600, 640), out))
            assert out.get(timeout=STALL) is True
            joined(run(ctx, w.try_whole_write, sa, out))
            assert out.get(timeout=STALL) is False
        a = sa.as_array()
        assert (a[:10] == 1).all() and (a[600:] == 5).all() and (a[10:600] == 0).all()


def test_rows_must_be_a_slice_of_consecutive_rows(name):
    with ndring.SharedArray.create(name, shape=(10, 2)) as sa:
        for bad in (slice(5, 5), slice(0, 10, 2), slice(20, 30)):
            with pytest.raises(ndring.InvalidArgument):
                sa.write(rows=bad)
        with pytest.raises(ndring.InvalidType):
            sa.write(rows=3)
        with sa.write(rows=slice(-2, None)) as part:
            assert part.shape == (2, 2)
            part[:] = 1
        assert sa.as_array()[8:].sum() == 4


@pytest.mark.parametrize("method", METHODS)
def test_wait_changed_across_processes(name, method):
    ctx = mp.get_context(method)
    with ndring.SharedArray.create(name, shape=(8,), dtype=np.int64) as sa:
        seen = sa.version
        out = ctx.Queue()
        p = run(ctx, w.wait_then_read, sa, seen, out)
        assert out.get(timeout=STALL) == "ready"
        with sa.write() as a:
            a[:] = 42
        assert out.get(timeout=STALL) == (seen + 1, 42)
        joined(p)
        with pytest.raises(ndring.Timeout):
            sa.wait_changed(sa.version, timeout=0.05)


# --- Crashes -------------------------------------------------------------------------------


def fork_holding(sa, block):
    """Forks a child that enters `block()` on `sa`, writes into it if it can, says so and
    sleeps until killed. Returns its pid once it holds the lock."""
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            a = block(sa).__enter__()
            if a.flags.writeable:
                a[: a.shape[0] // 2] = 99  # half-written
            os.write(wfd, b"!")
            time.sleep(STALL)
        finally:
            os._exit(0)
    os.close(wfd)
    with os.fdopen(r, "rb") as f:
        assert f.read(1) == b"!", "the child never took the lock"
    return pid


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def enter(block, way):
    """Enters `block(timeout)` as a user would wait: one call, sliced calls, or polling."""
    if way == "blocking":
        return block(None).__enter__()
    t, start = (0.02 if way == "sliced" else 0), time.monotonic()
    while True:
        try:
            return block(t).__enter__()
        except ndring.Timeout:
            assert time.monotonic() - start < STALL, "the dead holder was never recovered"


WAYS = ["blocking", "sliced", "polling"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("rows", [False, True])
def test_a_writer_killed_inside_write_poisons_the_array(name, way, rows):
    with ndring.SharedArray.create(name, shape=(100, 10), dtype=np.int32) as sa:
        whole = (lambda s: s.write(rows=slice(0, 50))) if rows else (lambda s: s.write())
        kill(fork_holding(sa, whole))
        with pytest.raises(ndring.Poisoned) as e:
            enter(lambda t: sa.write(timeout=t), way)
        assert isinstance(e.value, RuntimeError) and isinstance(e.value, ndring.Error)
        assert sa.poisoned
        with pytest.raises(ndring.Poisoned):
            sa.read(timeout=STALL).__enter__()
        # The lock itself was recovered: after clear_poison, writers go on at once.
        sa.clear_poison()
        assert not sa.poisoned
        with sa.write(timeout=0) as a:
            assert (a[:25] == 99).all(), "the dead writer's half-write is there to repair"
            a[:] = 0
        assert sa.version >= 1


@pytest.mark.parametrize("way", WAYS)
def test_a_reader_killed_inside_read_does_not_stop_writers(name, way):
    with ndring.SharedArray.create(name, shape=(16,), dtype=np.uint8) as sa:
        kill(fork_holding(sa, lambda s: s.read()))
        a = enter(lambda t: sa.write(timeout=t), way)
        a[:] = 3
        del a  # the block's view was its last: the lock goes with it
        assert not sa.poisoned
        with sa.read(timeout=0) as r:
            assert (r == 3).all()


# --- Views and lifetimes -------------------------------------------------------------------


def test_a_view_escaping_a_read_block_raises_and_keeps_the_lock_until_it_goes(name):
    ctx = mp.get_context("fork")
    with ndring.SharedArray.create(name, shape=(4, 4), dtype=np.float32) as sa:
        with pytest.raises(BufferError):
            with sa.read() as a:
                kept = a[1:]
        assert a.size == 0, "the with target still reaches the array"
        out = ctx.Queue()
        joined(run(ctx, w.try_whole_write, sa, out))
        assert out.get(timeout=STALL) is False, "a writer got in while a read view lived"
        assert kept.shape == (3, 4) and not kept.flags.writeable
        del kept
        joined(run(ctx, w.try_whole_write, sa, out))
        assert out.get(timeout=STALL) is True


def test_a_write_blocks_view_cannot_reach_the_array_after_the_block(name):
    with ndring.SharedArray.create(name, shape=(3, 3), dtype=np.int16) as sa:
        with sa.write() as a:
            a[:] = 1
        assert a.size == 0 and not a.flags.writeable
        with pytest.raises(ValueError):
            a.setflags(write=True)
        with pytest.raises(BufferError):
            with sa.write() as b:
                m = memoryview(b)
        assert b.size == 0
        m[0, 0] = 7  # still under the lock, which the memoryview holds
        v = sa.version
        del m, b  # b was not cut from the array: the memoryview referred to it
        with sa.read(timeout=0) as r:
            assert r[0, 0] == 7 and r.sum() == 15
        assert sa.version == v + 1  # the lock held by the memoryview ended as a write


def test_a_read_blocks_array_is_read_only(name):
    with ndring.SharedArray.create(name, shape=5) as sa:
        with sa.read() as a:
            with pytest.raises(ValueError):
                a[0] = 1
            with pytest.raises(ValueError):
                a.setflags(write=True)


def test_an_exception_in_a_block_releases_the_lock(name):
    with ndring.SharedArray.create(name, shape=5) as sa:
        with pytest.raises(KeyError):
            with sa.write() as a:
                a[:] = 2
                raise KeyError("x")
        with sa.write(timeout=0) as a:
            assert (a == 2).all()
        assert sa.version == 2


def test_as_array_outlives_close_and_keeps_the_name_until_it_goes(name):
    sa = ndring.SharedArray.create(name, shape=(2, 2), dtype=np.int32)
    a = sa.as_array()
    sa.close()
    with pytest.raises(ndring.Error):
        sa.as_array()
    with pytest.raises(ndring.Error):
        sa.read()
    a[1, 1] = 5  # no segfault: its base keeps the mapping
    with ndring.SharedArray.open(name) as other:
        assert other.as_array()[1, 1] == 5
    assert shm(name)
    del a
    assert not shm(name)


def test_keep_leaves_the_name(name):
    with ndring.SharedArray.create(name, shape=3, keep=True) as sa:
        sa.as_array()[:] = 4
    with ndring.SharedArray.open(name) as sa:
        assert (sa.as_array() == 4).all()
        sa.keep = False
    assert not shm(name)


# --- Blocks handed out again ---------------------------------------------------------------
# An uncontended block allocates nothing: the handle hands its last block out again once nothing
# refers to it, and a whole-array block reuses its lock holder, its base array and the views of
# earlier blocks once nothing refers to them (`python/src/shared/block.rs`). The rules of a
# block must hold on that path too.


def test_a_view_kept_from_a_reused_block_still_raises_and_keeps_the_lock(name):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    with ndring.SharedArray.create(name, shape=(4, 4), dtype=np.float32) as sa:
        targets = []
        for i in range(6):  # enough for every object to have been handed out again
            with sa.write() as a:
                a[:] = i
            targets.append(a)
            with sa.read() as a:
                assert (a == i).all()
        assert all(t.size == 0 and not t.flags.writeable for t in targets)
        with pytest.raises(BufferError):
            with sa.read() as a:
                kept = a[1:]
        assert a.size == 0, "the with target still reaches the array"
        joined(run(ctx, w.try_whole_write, sa, out))
        assert out.get(timeout=STALL) is False, "a writer got in while a read view lived"
        assert (kept == 5).all() and not kept.flags.writeable
        del kept
        joined(run(ctx, w.try_whole_write, sa, out))
        assert out.get(timeout=STALL) is True
        with sa.read(timeout=0) as a:
            assert a.shape == (4, 4)


def test_a_kept_target_is_never_handed_out_again(name):
    with ndring.SharedArray.create(name, shape=(3, 2), dtype=np.int32) as sa:
        with sa.write() as first:
            first[:] = 1
        weak = weakref.ref(first)
        kept = [first]
        for i in range(2, 8):
            with sa.write() as a:
                assert a is not first and a.shape == (3, 2) and (a == i - 1).all()
                a[:] = i
            kept.append(a)
        assert len({id(k) for k in kept}) == len(kept)
        assert all(k.size == 0 and k.base is None for k in kept)
        del kept, first, a
        # A view that had a weak reference is not revived either: the reference sees it emptied
        # (or gone), never over the array again.
        for _ in range(4):
            with sa.read() as a:
                r = weak()
                assert r is None or (r is not a and r.size == 0)
                del r


def test_a_block_object_held_by_the_caller_is_not_handed_out_again(name):
    with ndring.SharedArray.create(name, shape=3) as sa:
        b = sa.read()
        assert sa.read() is not b
        with b as a:
            assert a.shape == (3,)
        assert sa.read() is not b
        with pytest.raises(RuntimeError):
            with b:
                pass
        with pytest.raises(RuntimeError):
            b.__exit__(None, None, None)


def test_a_block_never_entered_is_handed_out_again_with_the_new_lock(name):
    with ndring.SharedArray.create(name, shape=(4, 2), dtype=np.uint8) as sa:
        for _ in range(3):
            sa.read()  # never entered, dropped: the next call may hand it out again
        with sa.write(rows=slice(1, 3)) as a:
            assert a.shape == (2, 2) and a.flags.writeable
            a[:] = 5
        sa.write()
        with sa.read() as r:
            assert r.shape == (4, 2) and not r.flags.writeable
            assert (r[1:3] == 5).all() and (r[0] == 0).all()
        sa.read(timeout=0)
        with sa.write() as a:  # not the timeout of the dropped block: it waits, and gets in
            a[:] = 1
        assert sa.version == 2


def test_the_base_of_a_blocks_array_cannot_be_reached_after_the_block(name):
    with ndring.SharedArray.create(name, shape=(3, 3), dtype=np.float64) as sa:
        for i in range(3):
            with sa.write() as a:
                a[:] = i
                weak = weakref.ref(a.base)
            # The base (which reaches the whole array) went with the block: a weak reference to
            # it is dead, not a way around the lock.
            assert weak() is None
            with sa.read() as r:
                assert (r == i).all() and r.base is not None and not r.base.flags.writeable
            with sa.write() as a:
                a.base.shape = (9,)  # changed through the view; not handed out as it was left
            with sa.read() as r:
                assert r.base.shape == (3, 3) and r.shape == (3, 3)


def test_a_read_block_inside_a_read_block(name):
    with ndring.SharedArray.create(name, shape=(2, 3), dtype=np.int16) as sa:
        with sa.write() as a:
            a[:] = 7
        for _ in range(3):
            with sa.read() as outer:
                with sa.read() as inner:
                    assert inner is not outer and (inner == 7).all()
                assert inner.size == 0 and (outer == 7).all()
                with pytest.raises(ndring.Timeout):
                    with sa.write(timeout=0):
                        pass
            assert outer.size == 0
        with sa.write(timeout=0) as a:
            assert (a == 7).all()


def test_nested_blocks_of_two_handles_and_a_write_after_a_refused_one(name):
    with ndring.SharedArray.create(name, shape=4) as sa, ndring.SharedArray.open(name) as other:
        with sa.write() as a:
            a[:] = 1
            with pytest.raises(ndring.Timeout):
                with other.read(timeout=0):
                    pass
            with pytest.raises(ndring.Timeout):
                with sa.read(timeout=0):  # the same handle: a second, new block, refused too
                    pass
            a[:] = 2
        # The refused blocks held nothing: both handles lock at once now.
        with other.write(timeout=0) as b:
            assert (b == 2).all()
            b[:] = 3
        with sa.read(timeout=0) as r, other.read(timeout=0) as s:
            assert (r == 3).all() and (s == 3).all()
        assert sa.version == 2


def test_exceptions_in_reused_blocks_release_the_lock(name):
    with ndring.SharedArray.create(name, shape=5) as sa:
        for i in range(5):
            with pytest.raises(KeyError):
                with sa.write() as a:
                    a[:] = i
                    raise KeyError("x")
            assert a.size == 0
            with pytest.raises(ValueError):
                with sa.read() as a:
                    raise ValueError("y")
        with sa.write(timeout=0) as a:
            assert (a == 4).all()
        assert sa.version == 6


def test_read_and_write_blocks_alternating_keep_their_flags(name):
    with ndring.SharedArray.create(name, shape=(2, 2), dtype=np.uint16) as sa:
        for i in range(6):
            with sa.write() as a:
                assert a.flags.writeable
                a[:] = i
            with sa.read() as r:
                assert not r.flags.writeable and (r == i).all()
                with pytest.raises(ValueError):
                    r[0, 0] = 9
                with pytest.raises(ValueError):
                    r.setflags(write=True)
                with pytest.raises(ValueError):
                    r.base.setflags(write=True)
            with sa.write(rows=slice(1, 2)) as rows:
                assert rows.shape == (1, 2) and rows.flags.writeable
                rows[:] = 100 + i
            with sa.read() as r:
                assert r.shape == (2, 2) and (r[1] == 100 + i).all() and (r[0] == i).all()


def test_a_target_reshaped_or_retyped_in_its_block_is_not_handed_out_as_it_was_left(name):
    with ndring.SharedArray.create(name, shape=(4, 4), dtype=np.float32) as sa:
        for change in ("shape", "dtype", "strides", "none"):
            with sa.write() as a:
                a[:] = 1.5
                if change == "shape":
                    a.shape = (16,)
                elif change == "dtype":
                    a.dtype = np.uint8
                elif change == "strides":
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)  # numpy >= 2.4
                        a.strides = (4, 16)
            assert a.size == 0
            del a
            for _ in range(3):
                with sa.read() as r:
                    assert r.shape == (4, 4) and r.dtype == np.float32 and r.strides == (16, 4)
                    assert (r == 1.5).all()


def test_blocks_of_a_0d_array_are_handed_out_again(name):
    with ndring.SharedArray.create(name, shape=(), dtype=np.int64) as sa:
        for i in range(5):
            with sa.write() as a:
                assert a.shape == ()
                a[...] = i
            assert a.size == 0
            with sa.read() as r:
                assert r.shape == () and r == i


def test_close_lets_the_kept_block_go(name):
    sa = ndring.SharedArray.create(name, shape=3)
    for _ in range(3):
        with sa.write() as a:
            a[:] = 1
        with sa.read():
            pass
    sa.close()
    assert not shm(name), "the handle's kept block kept the array attached"
    with pytest.raises(ndring.Error):
        sa.read()


def test_threads_sharing_a_handle_never_see_a_torn_array(name):
    with ndring.SharedArray.create(name, shape=(64, 8), dtype=np.int64) as sa:
        errors = []

        def writer():
            for i in range(2000):
                with sa.write(timeout=STALL) as a:
                    a[:] = i

        def reader():
            try:
                for _ in range(2000):
                    with sa.read(timeout=STALL) as a:
                        if not (a == a.flat[0]).all():
                            errors.append(a.copy())
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=f) for f in (writer, reader, reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STALL)
        assert not any(t.is_alive() for t in threads)
        assert not errors
        assert sa.version == 2000


# --- fork ----------------------------------------------------------------------------------


def in_child(body):
    """Forks; the child runs `body()` and exits 0 if it returns, 1 if it raises. Returns the
    child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def exit_code(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_while_a_read_view_is_alive_gives_the_child_a_private_snapshot(name):
    sa = ndring.SharedArray.create(name, shape=(1000,), dtype=np.int64)
    with sa.write() as a:
        a[:] = 1
    go_r, go_w = os.pipe()

    with sa.read() as a:

        def child():
            os.close(go_w)
            assert os.read(go_r, 1) == b"!"
            # The parent left its block and wrote 2 since: this view was not under any lock
            # here, so it kept what it showed at the fork.
            assert (a == 1).all()
            # The handle attaches anew in the child: shared again, and locks work.
            with sa.read(timeout=STALL) as now:
                assert (now == 2).all()
            with sa.write(timeout=STALL) as now:
                now[:] = 3

        pid = in_child(child)
    os.close(go_r)
    # The child's copy of the block did not hold the parent's lock: the parent writes at once.
    with sa.write(timeout=STALL) as b:
        b[:] = 2
    os.write(go_w, b"!")
    os.close(go_w)
    assert exit_code(pid) == 0
    with sa.read(timeout=0) as a:
        assert (a == 3).all()
    sa.close()


def test_a_child_forked_inside_a_read_block_leaves_the_parents_lock_alone(name):
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    sa = ndring.SharedArray.create(name, shape=(10,), dtype=np.uint8)
    with sa.read() as a:
        pid = os.fork()
        if pid == 0:
            # The child leaves the block at once (below), then exits.
            pass
        else:
            assert exit_code(pid) == 0
            # The child's exit from the block released nothing: the parent still reads.
            joined(run(ctx, w.try_whole_write, sa, out))
            assert out.get(timeout=STALL) is False
    if pid == 0:
        os._exit(0 if a.size == 0 else 1)
    # Released once, by the parent: a writer gets in.
    joined(run(ctx, w.try_whole_write, sa, out))
    assert out.get(timeout=STALL) is True
    sa.close()


def test_as_array_stays_shared_across_fork_even_with_a_received_slot_alive(name):
    ring = name + "r"
    with ndring.SharedArray.create(name, shape=(4,), dtype=np.int32) as sa, \
            ndring.Consumer.create(ring, shape=2, dtype=np.uint8) as rx, \
            ndring.Producer.open(ring) as tx:
        tx.send(np.ones(2, dtype=np.uint8))
        item = rx.recv(timeout=STALL)  # a ring array alive at fork: ring mappings are copied
        x = sa.as_array()

        def child():
            x[0] = 9  # in place, as with shared_memory

        assert exit_code(in_child(child)) == 0
        assert x[0] == 9, "the child's as_array() write did not reach the shared array"
        del item


def test_a_write_block_forked_into_a_child_refuses_to_pretend_it_wrote(name):
    sa = ndring.SharedArray.create(name, shape=(3,), dtype=np.int8)
    pid = None
    try:
        with sa.write() as a:
            pid = os.fork()
            if pid == 0:
                a[:] = 5  # a private copy in the child: the parent holds the lock
    except ndring.Error:
        if pid == 0:
            os._exit(7)
        raise
    if pid == 0:
        os._exit(0)
    assert exit_code(pid) == 7, "leaving the write block in the child did not raise"
    assert (sa.as_array() == 0).all(), "the child's write reached the shared array"
    assert sa.version == 1
    sa.close()


# --- Handles -------------------------------------------------------------------------------


def test_a_handle_pickles_to_its_name(name):
    with ndring.SharedArray.create(name, shape=(2, 3), dtype=np.uint32) as sa:
        sa.as_array()[:] = 6
        again = pickle.loads(pickle.dumps(sa))
        assert (again.name, again.shape, again.dtype) == (name, (2, 3), np.uint32)
        assert not again.owner
        assert (again.as_array() == 6).all()
        again.close()
    assert not shm(name)


def test_open_checks_shape_dtype_and_kind(name):
    with ndring.SharedArray.create(name, shape=(2, 3), dtype=np.uint32):
        assert ndring.SharedArray.open(name, shape=(2, 3), dtype="uint32").shape == (2, 3)
        with pytest.raises(ndring.Mismatch):
            ndring.SharedArray.open(name, shape=(3, 2))
        with pytest.raises(ndring.Mismatch):
            ndring.SharedArray.open(name, dtype=np.float32)
    with pytest.raises(ndring.NotFound):
        ndring.SharedArray.open(name)
    with ndring.Consumer.create(name, shape=2, dtype=np.uint8):
        with pytest.raises(ndring.Mismatch):
            ndring.SharedArray.open(name)
    with ndring.SharedArray.create(name, shape=2):
        with pytest.raises(ndring.AlreadyExists):
            ndring.SharedArray.create(name, shape=2)


def test_open_waits_for_the_creator(name):
    t = threading.Timer(0.2, lambda: ndring.SharedArray.create(name, shape=2, keep=True).close())
    t.start()
    try:
        with ndring.SharedArray.open(name, timeout=STALL) as sa:
            assert sa.shape == (2,)
    finally:
        t.join()


@pytest.mark.parametrize("wait", ["lock", "wait_changed"])
def test_ctrl_c_interrupts_a_wait(name, wait):
    with ndring.SharedArray.create(name, shape=4) as sa:
        with sa.write(rows=slice(0, 1)):
            other = ndring.SharedArray.open(name)
            t = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
            t.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    if wait == "lock":
                        other.read(timeout=STALL).__enter__()
                    else:
                        other.wait_changed(other.version, timeout=STALL)
            finally:
                t.join()
                other.close()
