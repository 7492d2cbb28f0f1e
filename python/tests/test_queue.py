"""Queue rings from Python: round trips, per-frame info, views that cannot dangle, errors."""

import gc

import numpy as np
import pytest

import ndring


def test_round_trip_zero_copy_with_info(name):
    tx = ndring.Producer.create(name, shape=(4, 5), dtype=np.float32, slots=4, timestamps=True)
    rx = ndring.Consumer.open(name)
    assert (rx.shape, rx.dtype, rx.slots, rx.kind) == ((4, 5), np.dtype(np.float32), 4, "spsc")
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    assert tx.send(image.T.copy().T, meta=b"frame-1") == 1  # any strides are copied correctly
    with tx.claim(meta=b"frame-2") as frame:
        frame[:] = -image
    a = rx.recv()
    b = rx.recv()
    assert np.array_equal(a, image) and np.array_equal(b, -image)
    assert not a.flags.writeable
    info = ndring.info(a[1:, ::2])  # from a view too
    assert (info.seq, info.meta) == (1, b"frame-1")
    assert ndring.info(b).meta == b"frame-2"
    assert 0 < info.timestamp_ns <= ndring.now_ns()


def test_received_array_cannot_be_made_writeable(name):
    tx = ndring.Producer.create(name, shape=3, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    tx.send(np.array([1, 2, 3], dtype=np.uint8))
    a = rx.recv()
    with pytest.raises(ValueError):
        a[0] = 9
    with pytest.raises(ValueError):
        a.flags.writeable = True


def test_recv_into_and_recv_copy(name):
    tx = ndring.Producer.create(name, shape=(2, 2), dtype=np.int64, kind="mpmc")
    rx = ndring.Consumer.open(name)
    tx.send(np.array([[1, 2], [3, 4]]))
    tx.send(np.array([[5, 6], [7, 8]]))
    out = np.zeros((2, 2), dtype=np.int64)
    assert rx.recv_into(out.T) == 1  # any strides
    assert np.array_equal(out, [[1, 3], [2, 4]])
    c = rx.recv_copy()
    assert c.flags.writeable and np.array_equal(c, [[5, 6], [7, 8]])
    assert rx.held == 0


def test_del_frees_the_slot_and_kept_views_give_backpressure(name):
    tx = ndring.Producer.create(name, shape=8, dtype=np.uint8, slots=2)
    rx = ndring.Consumer.open(name)
    tx.send(np.full(8, 1, np.uint8))
    tx.send(np.full(8, 2, np.uint8))
    a = rx.recv()
    view = a[2:5]
    del a
    b = rx.recv()
    assert rx.held == 2
    with pytest.raises(ndring.Timeout):  # both slots held by live arrays: the ring is full
        tx.send(np.full(8, 3, np.uint8), timeout=0.05)
    del view  # the last view of the first item: its slot goes back
    gc.collect()
    assert rx.held == 1
    tx.send(np.full(8, 3, np.uint8), timeout=5)
    del b
    assert rx.held == 0
    assert rx.recv()[0] == 3


def test_out_of_order_release_mpmc(name):
    tx = ndring.Producer.create(name, shape=1, dtype=np.uint16, slots=3, kind="mpmc")
    rx = ndring.Consumer.open(name)
    for i in range(3):
        tx.send(np.array([i], np.uint16))
    held = [rx.recv() for _ in range(3)]
    del held[1]  # seq 2's slot is free, but the ring refills in slot order: seq 1's comes first
    with pytest.raises(ndring.Timeout):
        tx.send(np.array([3], np.uint16), timeout=0.05)
    del held[0]  # seq 1's slot: now both go back
    tx.send(np.array([3], np.uint16), timeout=5)
    tx.send(np.array([4], np.uint16), timeout=5)
    assert int(held[0][0]) == 2
    assert [int(rx.recv()[0]) for _ in range(2)] == [3, 4]


def test_holding_every_slot_is_an_error_not_a_deadlock(name):
    tx = ndring.Producer.create(name, shape=4, dtype=np.uint8, slots=2)
    rx = ndring.Consumer.open(name)
    tx.send(np.zeros(4, np.uint8))
    tx.send(np.zeros(4, np.uint8))
    kept = [rx.recv(), rx.recv()]
    with pytest.raises(ndring.TooManyLeases) as e:
        rx.recv()  # no timeout: it must not wait forever
    assert isinstance(e.value, BufferError)
    del kept


def test_waiting_on_a_slot_we_hold_is_an_error_not_a_deadlock(name):
    tx = ndring.Producer.create(name, shape=1, dtype=np.uint8, slots=2, kind="mpmc")
    rx = ndring.Consumer.open(name)
    other = ndring.Consumer.open(name)
    tx.send(np.array([1], np.uint8))
    tx.send(np.array([2], np.uint8))
    first = rx.recv()
    assert other.recv_copy()[0] == 2  # another worker drains the rest
    with pytest.raises(ndring.TooManyLeases, match="holds"):
        rx.recv()  # the producers need first's slot next: waiting would never end
    del first
    tx.send(np.array([3], np.uint8), timeout=5)
    assert rx.recv(timeout=5)[0] == 3


def test_claim_target_is_revoked_after_publish(name):
    tx = ndring.Producer.create(name, shape=(3, 4), dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    claim = tx.claim()
    with claim as frame:
        frame[:] = 5
    assert claim.seq == 1
    assert frame.shape == (0, 4) and not frame.flags.writeable
    assert np.all(rx.recv() == 5)


def test_claim_with_surviving_view_raises_buffer_error(name):
    tx = ndring.Producer.create(name, shape=16, dtype=np.uint8, slots=2)
    rx = ndring.Consumer.open(name)
    with pytest.raises(BufferError):
        with tx.claim() as frame:
            frame[:] = 1
            kept = frame[4:8]
    with pytest.raises(ndring.TooManyLeases):  # the slot stays claimed while the view lives
        tx.claim()
    kept[:] = 7  # still our slot, never received
    del kept
    gc.collect()
    with tx.claim() as frame:  # abandoned now; the next claim works
        frame[:] = 2
    got = rx.recv(timeout=5)
    assert np.all(got == 2) and ndring.info(got).seq == 1


def test_claim_with_memoryview_raises_buffer_error_and_keeps_the_slot(name):
    tx = ndring.Producer.create(name, shape=16, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    with pytest.raises(BufferError):
        with tx.claim() as frame:
            m = memoryview(frame)
    m[0] = 1  # still the claimed slot: nobody else may have it while m lives
    with pytest.raises(ndring.TooManyLeases):
        tx.claim()
    del m, frame
    gc.collect()
    tx.send(np.full(16, 2, np.uint8), timeout=5)
    got = rx.recv(timeout=5)
    assert np.all(got == 2) and ndring.info(got).seq == 1


def test_exception_in_claim_abandons(name):
    tx = ndring.Producer.create(name, shape=4, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    with pytest.raises(RuntimeError):
        with tx.claim() as frame:
            frame[:] = 9
            raise RuntimeError("camera failed")
    tx.send(np.full(4, 1, np.uint8))
    a = rx.recv(timeout=5)
    assert np.all(a == 1)
    with pytest.raises(ndring.Timeout):
        rx.recv(timeout=0.05)


def test_close_then_closed(name):
    with ndring.Producer.create(name, shape=2, dtype=np.int32) as tx, ndring.Consumer.open(name) as rx:
        tx.send(np.array([1, 2], np.int32))
        tx.close()
        assert list(rx.recv()) == [1, 2]
        with pytest.raises(ndring.Closed):
            rx.recv()
        with pytest.raises(ndring.Closed):
            tx.send(np.array([1, 2], np.int32))
    with pytest.raises(ndring.Error, match="closed"):
        rx.recv()  # detached by the with block


def test_iterating_a_consumer_yields_every_item_then_stops_at_close(name):
    with ndring.Producer.create(name, shape=3, dtype=np.int64, slots=4) as tx, ndring.Consumer.open(name) as rx:
        assert iter(rx) is rx
        tx.send(np.array([1, 1, 1]))
        tx.send(np.array([2, 2, 2]))
        tx.close()
        seen = [(int(a[0]), ndring.info(a).seq) for a in rx]
        assert seen == [(1, 1), (2, 2)]
        assert next(rx, None) is None  # still closed and drained


def test_iteration_raises_what_is_not_the_end(name):
    # The producer detaches without closing: the stream did not end, it lost its producer.
    tx = ndring.Producer.create(name, shape=1, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    tx.send(np.array([5], np.uint8))
    tx.detach()
    it = iter(rx)
    assert int(next(it)[0]) == 5
    with pytest.raises(ndring.Disconnected):
        next(it)
    rx.detach()


def test_slot_reuse_policy_switches_mid_stream_without_reordering(name):
    # 64 KiB items (recent-first by default); the consumer keeps every third item while it
    # receives the next two, so slots come back out of order, and the policy flips every 5
    # items. (Kept longer, item j would hold `head` at j and the 4-slot ring full: this thread's
    # own send would then wait forever.)
    shape = (256, 256)
    with ndring.Producer.create(name, shape=shape, dtype=np.uint8, slots=4) as tx, ndring.Consumer.open(name) as rx:
        kept = None
        for i in range(40):
            if i % 5 == 0:
                tx.reuse_recent_slots(i % 10 == 0)
            tx.send(np.full(shape, i, np.uint8), timeout=5)
            a = rx.recv(timeout=5)
            assert ndring.info(a).seq == i + 1
            assert (a == i).all()
            if kept is not None and i - kept[0] == 2:
                assert (kept[1] == kept[0]).all()  # a held slot is never rewritten
                kept = None
            if i % 3 == 0:
                kept = (i, a)
            del a


def test_open_or_create_either_order(name):
    rx = ndring.Consumer.open_or_create(name, shape=(2, 3), dtype="uint16")
    tx = ndring.Producer.open_or_create(name, shape=(2, 3), dtype="uint16")
    tx.send(np.ones((2, 3), np.uint16))
    assert rx.recv().sum() == 6


def test_error_classes(name):
    for cls, base in [
        (ndring.NotFound, FileNotFoundError),
        (ndring.PermissionDenied, PermissionError),
        (ndring.Timeout, TimeoutError),
        (ndring.AlreadyExists, FileExistsError),
        (ndring.TooManyLeases, BufferError),
        (ndring.Mismatch, ValueError),
        (ndring.InvalidArgument, ValueError),
    ]:
        assert issubclass(cls, ndring.Error) and issubclass(cls, base)
    for cls in (ndring.Closed, ndring.Disconnected, ndring.Lagged, ndring.Full, ndring.Empty):
        assert issubclass(cls, ndring.Error)
    assert ndring.Lagged("lagged", missed=3).missed == 3

    with pytest.raises(FileNotFoundError) as e:
        ndring.Consumer.open(name)
    assert isinstance(e.value, ndring.NotFound) and name in str(e.value)
    tx = ndring.Producer.create(name, shape=(2, 2), dtype=np.uint8)
    with pytest.raises(ndring.AlreadyExists):
        ndring.Producer.create(name, shape=(2, 2), dtype=np.uint8)
    with pytest.raises(ndring.Mismatch, match="shape"):
        ndring.Consumer.open_or_create(name, shape=(3, 3), dtype=np.uint8)
    with pytest.raises(ndring.Mismatch):
        ndring.Subscriber.open(name)
    with pytest.raises(ndring.InvalidArgument):
        ndring.Producer.create("no-leading-slash", shape=1, dtype=np.uint8)
    with pytest.raises(TypeError, match="dtype uint8"):
        tx.send(np.zeros((2, 2), np.float64))
    with pytest.raises(ndring.Mismatch):
        tx.send(np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError):
        ndring.Producer.create(name + "x", shape=1, dtype=np.longdouble)
    rx = ndring.Consumer.open(name)
    with pytest.raises(ndring.Timeout):
        rx.recv(timeout=0.01)
    with pytest.raises(ndring.Error, match="pickled"):
        import pickle

        pickle.dumps(rx)


def test_disconnected_when_the_producer_left_without_closing(name):
    rx = ndring.Consumer.create(name, shape=2, dtype=np.uint8)
    with ndring.Producer.open(name) as tx:
        tx.send(np.array([1, 2], np.uint8))
    assert list(rx.recv(timeout=5)) == [1, 2]
    with pytest.raises(ndring.Disconnected, match="producer"):
        rx.recv(timeout=5)


def test_open_waits_for_the_creator(name):
    import threading

    t = threading.Timer(0.2, lambda: created.append(ndring.Producer.create(name, shape=1, dtype=np.uint8)))
    created = []
    t.start()
    rx = ndring.Consumer.open(name, timeout=30)
    t.join()
    assert rx.shape == (1,)
    with pytest.raises(ndring.NotFound):
        ndring.Consumer.open(name + "-never", timeout=0.05)


def test_a_handle_waiting_in_one_thread_refuses_other_threads(name):
    import threading

    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    got, waiting = [], threading.Event()

    def wait_for_one():
        waiting.set()
        got.append(rx.recv(timeout=10).copy())

    t = threading.Thread(target=wait_for_one)
    t.start()
    waiting.wait()
    deadline = ndring.now_ns() + 5_000_000_000
    # The waiting thread holds the handle (GIL released): other calls fail, never interleave.
    while True:
        try:
            rx.recv(timeout=0)
        except RuntimeError as e:
            assert "in use" in str(e)
            break
        except ndring.Timeout:  # the thread has not entered recv yet
            assert ndring.now_ns() < deadline
    with pytest.raises(RuntimeError, match="in use"):
        rx.close()
    with pytest.raises(RuntimeError, match="in use"):
        rx.held
    assert repr(rx) == "ndring.Consumer(in use by another thread)"
    tx.send(np.array([4, 5], dtype=np.uint8))
    t.join()
    assert got[0].tolist() == [4, 5]
    assert rx.held == 0
    rx.close()
    with pytest.raises(ndring.Error, match="closed"):
        rx.recv(timeout=0)


def test_lease_objects_come_only_from_recv(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    tx.send(np.array([1, 2], dtype=np.uint8))
    lease = ndring.info(rx.recv())
    assert type(lease) is ndring.Lease and repr(lease) == "ndring.Lease(seq=1)"
    assert lease.timestamp_ns is None and lease.meta == b""
    with pytest.raises(AttributeError):
        lease.seq = 5
    with pytest.raises(TypeError):
        ndring.Lease()  # an empty one would own no slot
    with pytest.raises(TypeError):
        type("Sub", (ndring.Lease,), {})
    assert rx.held == 1
    del lease
    assert rx.held == 0


def test_send_takes_any_array_of_the_ring_type_and_checks_before_waiting(name):
    tx = ndring.Producer.create(name, shape=4, dtype=np.uint8, slots=4)
    rx = ndring.Consumer.open(name)

    class Frame(np.ndarray):
        pass

    other_descr = np.dtype(np.uint8).newbyteorder()  # equivalent, not numpy's builtin object
    sent = [
        np.arange(4, dtype=np.uint8),
        np.arange(4, dtype=np.uint8).view(Frame),
        np.arange(8, dtype=np.uint8)[::-2],  # negative strides
        np.arange(4, dtype=np.uint8).astype(other_descr),
    ]
    for a in sent:
        tx.send(a)
    with pytest.raises(TypeError, match="dtype uint8"):  # full ring: fails at once, no wait
        tx.send(np.zeros(4, np.float32))
    with pytest.raises(ndring.Mismatch):
        tx.send(np.zeros(5, np.uint8))
    for a in sent:
        assert rx.recv().tolist() == np.asarray(a).tolist()
