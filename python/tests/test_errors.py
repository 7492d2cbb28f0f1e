"""Bad input raises an ndring.Error subclass that is also the builtin a caller catches
(TypeError, ValueError, FileExistsError), with a message in Python's terms that says what is
allowed (issue 26)."""

import numpy as np
import pytest

import ndring

SUPPORTED = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
             "float32", "float64", "float16", "bfloat16 (with ml_dtypes)", "complex64",
             "complex128", "or bool elements"]


def raises(cls, builtin, call, *needles):
    """Calls `call()`, which must raise `cls` (also a `builtin`) whose message holds every one
    of `needles`; returns the message."""
    with pytest.raises(cls) as e:
        call()
    assert isinstance(e.value, ndring.Error) and isinstance(e.value, builtin)
    message = str(e.value)
    for n in needles:
        assert n in message, (n, message)
    return message


def discard(name):
    """Removes `name` if its last handle did not already."""
    try:
        ndring.remove(name)
    except ndring.NotFound:
        pass


def test_every_class_derives_from_error_and_its_builtin():
    for cls, builtin in [
        (ndring.NotFound, FileNotFoundError),
        (ndring.PermissionDenied, PermissionError),
        (ndring.AlreadyExists, FileExistsError),
        (ndring.Stale, FileExistsError),
        (ndring.Timeout, TimeoutError),
        (ndring.TooManyLeases, BufferError),
        (ndring.Mismatch, ValueError),
        (ndring.InvalidArgument, ValueError),
        (ndring.InvalidType, TypeError),
    ]:
        assert issubclass(cls, ndring.Error) and issubclass(cls, builtin), cls
    # A stale name is not a live one: `except AlreadyExists` does not swallow it.
    assert not issubclass(ndring.Stale, ndring.AlreadyExists)


@pytest.mark.parametrize("create", [
    lambda n, **kw: ndring.Producer.create(n, **kw),
    lambda n, **kw: ndring.Consumer.create(n, **kw),
    lambda n, **kw: ndring.Producer.open_or_create(n, **kw),
    lambda n, **kw: ndring.BroadcastWriter.create(n, **kw),
], ids=["Producer.create", "Consumer.create", "open_or_create", "BroadcastWriter.create"])
def test_unsupported_dtypes_list_the_supported_ones(name, create):
    for dtype, shown in [(np.longdouble, "float128"), (np.clongdouble, "complex256"),
                         ("U4", "str128"), (object, "object")]:
        m = raises(ndring.InvalidType, TypeError, lambda: create(name, shape=4, dtype=dtype),
                   *SUPPORTED, f"not {shown}")
        assert "void" not in m
    # A structured dtype: what was passed (its fields), not numpy's name for it ("void40").
    pair = np.dtype([("a", "u1"), ("b", "<f4")])
    m = raises(ndring.InvalidType, TypeError, lambda: create(name, shape=4, dtype=pair),
               *SUPPORTED, "('a', 'u1')", "('b', '<f4')")
    assert "void" not in m
    raises(ndring.InvalidType, TypeError, lambda: create(name, shape=4, dtype="not-a-dtype"),
           "dtype must be a numpy dtype", "'not-a-dtype'")
    raises(ndring.InvalidType, TypeError, lambda: create(name, shape=4, dtype=">u4"),
           ">u4", "native byte order", "uint32")


def test_wrong_arrays_to_send_and_recv_into(name):
    tx = ndring.Producer.create(name, shape=(2, 2), dtype=np.uint8)
    raises(ndring.InvalidType, TypeError, lambda: tx.send(np.zeros((2, 2), np.float32)),
           "image", "dtype uint8", "shape (2, 2)", "got an array of dtype float32")
    raises(ndring.InvalidType, TypeError, lambda: tx.send([[1, 2], [3, 4]]),
           "numpy array", "got a list")
    raises(ndring.Mismatch, ValueError, lambda: tx.send(np.zeros((2, 3), np.uint8)),
           "shape (2, 2)", "shape (2, 3)")
    # Non-contiguous arrays take the other path: the same errors.
    raises(ndring.InvalidType, TypeError, lambda: tx.send(np.zeros((2, 4), np.int8)[:, ::2]),
           "dtype uint8")
    raises(ndring.Mismatch, ValueError, lambda: tx.send(np.zeros((2, 6), np.uint8)[:, ::2]),
           "(2, 3)")
    rx = ndring.Consumer.open(name)
    tx.send(np.ones((2, 2), np.uint8))
    raises(ndring.InvalidType, TypeError, lambda: rx.recv_into(np.zeros((2, 2), np.int64)),
           "out", "dtype uint8", "int64")
    raises(ndring.Mismatch, ValueError, lambda: rx.recv_into(np.zeros(4, np.uint8)),
           "out", "(2, 2)", "(4,)")
    frozen = np.zeros((2, 2), np.uint8)
    frozen.flags.writeable = False
    raises(ndring.InvalidArgument, ValueError, lambda: rx.recv_into(frozen), "writable")
    assert rx.recv_into(np.zeros((2, 2), np.uint8)) == 1  # nothing was consumed by the errors


def test_wrong_arrays_to_a_broadcast_writer(name):
    w = ndring.BroadcastWriter.create(name, shape=3, dtype=np.float32)
    raises(ndring.InvalidType, TypeError, lambda: w.send(np.zeros(3, np.float64)),
           "dtype float32", "float64")
    raises(ndring.Mismatch, ValueError, lambda: w.send(np.zeros(4, np.float32)), "(3,)", "(4,)")


@pytest.mark.parametrize("shape,what", [
    ((-1, 4), "dimension 0 is -1"),
    ((4, 0), "dimension 1 is 0"),
    (0, "dimension 0 is 0"),
    (-3, "dimension 0 is -3"),
    ((1,) * 9, "9 dimensions"),
    ((2**70, 2), "too large"),
])
def test_bad_shapes_say_the_range(name, shape, what):
    for create in (ndring.Producer.create, ndring.Consumer.create, ndring.BroadcastWriter.create):
        raises(ndring.InvalidArgument, ValueError, lambda: create(name, shape=shape, dtype=np.uint8),
               "shape must be an int or a sequence of 0 to 8 ints, each >= 1", what)


def test_shapes_of_the_wrong_type(name):
    for shape in ("ab", 2.0, (2, "x"), None, (2, 1.5)):
        raises(ndring.InvalidType, TypeError,
               lambda: ndring.Producer.create(name, shape=shape, dtype=np.uint8),
               "shape must be an int or a sequence")
    # numpy integers and lists are shapes; () is a scalar ring.
    with ndring.Producer.create(name, shape=[np.int64(2), 3], dtype=np.uint8) as tx:
        assert tx.shape == (2, 3)
    discard(name)
    with ndring.Producer.create(name, shape=(), dtype=np.uint8) as tx:
        assert tx.shape == ()
        assert "shape=()" in repr(tx)


@pytest.mark.parametrize("slots", [1, 0, -1, 65537, 2**80])
def test_slot_counts_out_of_range(name, slots):
    for create in (ndring.Producer.create, ndring.Consumer.create, ndring.Consumer.open_or_create,
                   ndring.BroadcastWriter.create):
        raises(ndring.InvalidArgument, ValueError,
               lambda: create(name, shape=4, dtype=np.uint8, slots=slots),
               "slots must be an int from 2 to 65536", f"got {slots}")


def test_slot_counts_at_the_limits(name):
    with ndring.Producer.create(name, shape=1, dtype=np.uint8, slots=2) as tx:
        assert tx.slots == 2
    discard(name)
    with ndring.Producer.create(name, shape=1, dtype=np.uint8, slots=65536) as tx:
        assert tx.slots == 65536
    discard(name)
    # Many slots on a broadcast ring: max_subscribers defaults to slots - 2, at most 1023.
    with ndring.BroadcastWriter.create(name, shape=1, dtype=np.uint8, slots=2000) as w:
        assert w.slots == 2000
    raises(ndring.InvalidType, TypeError,
           lambda: ndring.Producer.create(name, shape=1, dtype=np.uint8, slots="4"),
           "slots must be an int from 2 to 65536", "'4' (str)")


def test_bad_names(name):
    raises(ndring.InvalidArgument, ValueError,
           lambda: ndring.Producer.create("cam0", shape=1, dtype=np.uint8),
           "\"cam0\"", "must start with '/'", "'/' followed by 1 to 30 bytes")
    raises(ndring.InvalidArgument, ValueError,
           lambda: ndring.Consumer.open("/" + "x" * 40), "longer than 31 bytes")
    raises(ndring.InvalidArgument, ValueError, lambda: ndring.remove("/a/b"), "no '/'")
    raises(ndring.InvalidType, TypeError,
           lambda: ndring.Producer.create(5, shape=1, dtype=np.uint8),
           "name must be a str", "5 (int)")
    raises(ndring.InvalidType, TypeError, lambda: ndring.remove(None), "name must be a str")
    raises(ndring.NotFound, FileNotFoundError, lambda: ndring.remove(name), name)


def test_other_arguments(name):
    create = ndring.Producer.create
    raises(ndring.InvalidArgument, ValueError,
           lambda: create(name, shape=1, dtype=np.uint8, kind="fifo"),
           'kind must be "spsc" or "mpmc"', '"fifo"')
    raises(ndring.InvalidType, TypeError, lambda: create(name, shape=1, dtype=np.uint8, kind=1),
           'kind must be "spsc" or "mpmc"')
    raises(ndring.InvalidArgument, ValueError,
           lambda: create(name, shape=1, dtype=np.uint8, meta_size=5000),
           "meta_size must be an int from 0 to 4096", "5000")
    raises(ndring.InvalidArgument, ValueError,
           lambda: create(name, shape=1, dtype=np.uint8, spin=-1), "spin must be an int from 0")
    raises(ndring.InvalidType, TypeError,
           lambda: create(name, shape=1, dtype=np.uint8, keep="yes"), "keep must be True or False")
    raises(ndring.InvalidType, TypeError,
           lambda: create(name, shape=1, dtype=np.uint8, replace_stale=1),
           "replace_stale must be True or False")
    raises(ndring.InvalidArgument, ValueError,
           lambda: ndring.BroadcastWriter.create(name, shape=1, dtype=np.uint8, max_subscribers=0),
           "max_subscribers must be an int from 1 to 1023")
    raises(ndring.InvalidArgument, ValueError,
           lambda: ndring.BroadcastWriter.create(name, shape=1, dtype=np.uint8, slots=4,
                                                 max_subscribers=5),
           "5 subscribers needs at least 7 slots")
    tx = create(name, shape=1, dtype=np.uint8, slots=2)
    for t in (-1, float("nan"), -float("inf")):
        raises(ndring.InvalidArgument, ValueError, lambda: tx.send(np.zeros(1, np.uint8), timeout=t),
               "timeout must be None or a number of seconds >= 0")
        raises(ndring.InvalidArgument, ValueError, lambda: tx.claim(timeout=t), "timeout must be")
        raises(ndring.InvalidArgument, ValueError, lambda: ndring.Consumer.open(name, timeout=t),
               "timeout must be")
    raises(ndring.InvalidType, TypeError, lambda: ndring.Consumer.open(name, timeout="1"),
           "timeout must be None or a number", "'1' (str)")
    raises(ndring.InvalidType, TypeError, lambda: tx.send(np.zeros(1, np.uint8), meta="text"),
           "meta must be None or bytes")
    raises(ndring.InvalidArgument, ValueError, lambda: tx.send(np.zeros(1, np.uint8), meta=b"x" * 65),
           "meta of 65 bytes does not fit the 64 bytes", "meta_size")
    with pytest.raises(ndring.InvalidType):
        tx.claim().meta = "text"
    assert tx.send(np.zeros(1, np.uint8), timeout=float("inf"), meta=bytearray(b"ok")) == 1
    raises(ndring.InvalidArgument, ValueError, lambda: ndring.Subscriber.open(name, start="middle"),
           'start must be "newest" or "oldest"', '"middle"')
    raises(ndring.InvalidType, TypeError, lambda: ndring.info(np.zeros(3)),
           "not an array received")


def test_open_mismatches_in_python_terms(name):
    tx = ndring.Producer.create(name, shape=(2, 3), dtype=np.uint8)  # noqa: F841 (kept)
    raises(ndring.Mismatch, ValueError,
           lambda: ndring.Consumer.open_or_create(name, shape=(3, 2), dtype=np.uint8),
           "expected (3, 2)", "(2, 3)")
    raises(ndring.Mismatch, ValueError,
           lambda: ndring.Consumer.open_or_create(name, shape=(2, 3), dtype=np.uint16),
           "expected uint16", "holds uint8")


@pytest.mark.parametrize("create", [
    lambda n, **kw: ndring.Producer.create(n, shape=4, dtype=np.uint8, **kw),
    lambda n, **kw: ndring.Consumer.create(n, shape=4, dtype=np.uint8, **kw),
    lambda n, **kw: ndring.BroadcastWriter.create(n, shape=4, dtype=np.uint8, **kw),
], ids=["Producer", "Consumer", "BroadcastWriter"])
def test_a_stale_name_after_a_sigkill(name, make_stale, create):
    dead = make_stale(name)
    m = raises(ndring.Stale, FileExistsError, lambda: create(name), name, f"pid {dead}",
               "replace_stale=True", f'ndring.remove("{name}")')
    assert "replace_stale(true)" not in m  # the Rust spelling
    with create(name, replace_stale=True) as h:
        assert h.shape == (4,)
    discard(name)
    # Removing it is the other way out.
    make_stale(name)
    ndring.remove(name)
    with create(name):
        pass


def test_a_live_name_is_not_stale(name):
    with ndring.Producer.create(name, shape=1, dtype=np.uint8):
        for replace in (False, True):
            raises(ndring.AlreadyExists, FileExistsError,
                   lambda: ndring.Producer.create(name, shape=1, dtype=np.uint8,
                                                  replace_stale=replace),
                   "already exists")


def test_open_or_create_adopts_a_stale_ring(name, make_stale):
    make_stale(name)
    with ndring.Consumer.open_or_create(name, shape=4, dtype=np.uint8) as rx:
        # The dead producer's unread item is still there for whoever takes the ring over.
        assert list(rx.recv(timeout=5)) == [0, 1, 2, 3]
