"""The element types of ML models and signal processing (float16, bfloat16, complex64,
complex128, bool), across real processes and byte for byte (issue 26): from Python to a Rust
reader, and from a Rust writer to Python, through `examples/dtype_relay.rs`, which learns each
ring's type from its header (`ndring::with_dtype!`). The values are those a copy through a float
register or a conversion could change: every float16 and bfloat16 bit pattern (NaN payloads,
signalling NaNs, subnormals, infinities, -0), complex pairs of such float32/float64 values, and
every byte 0..255 in a bool ring.

bool: the ring holds a byte; any nonzero byte is true (as Rust's `Bool8` reads it). A Python
writer's bytes are stored as they are. A Python reader gets numpy bools as numpy stores them, 0
or 1: an item whose bytes are all 0 or 1 as an array over its slot (zero copy), one holding
another byte (a Rust writer's `Bool8::from_byte(2)`, say) as a read-only copy with every nonzero
byte made 1, the slot released at once.

bfloat16 needs `ml_dtypes` (which `.ci/run` installs): without it these tests fail, never skip."""

import itertools
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ndring
from relay import Relay

try:
    import ml_dtypes
except ImportError:  # the bfloat16 tests fail, saying why (see need_ml_dtypes)
    ml_dtypes = None

ITEMS = 3

# float32 / float64 bit patterns a copy through a float register could change.
F32_SPECIAL = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF,
               0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC00001, 0xFFC12345, 0x7F800001,
               0x7FBFFFFF, 0xFF800001, 0x3F800000, 0xC0490FDB]
F64_SPECIAL = [0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x800FFFFFFFFFFFFF,
               0x0010000000000000, 0x7FEFFFFFFFFFFFFF, 0x7FF0000000000000, 0xFFF0000000000000,
               0x7FF8000000000000, 0x7FF8000000000001, 0xFFF8123456789ABC, 0x7FF0000000000001,
               0x7FF7FFFFFFFFFFFF, 0xFFF0000000000001, 0x3FF0000000000000, 0xC00921FB54442D18]


def need_ml_dtypes():
    if ml_dtypes is None:
        pytest.fail("ml_dtypes is not installed, so the bfloat16 tests cannot run: "
                    "pip install ml_dtypes (.ci/run installs it in the test venv)")
    return ml_dtypes.bfloat16


def pairs(bits, unsigned):
    """Every (re, im) pair of the patterns `bits`, as raw words (re first)."""
    b = np.array(bits, dtype=unsigned)
    return np.stack(np.meshgrid(b, b, indexing="ij"), axis=-1).reshape(-1)


def pattern(dtype):
    """(numpy dtype, the values as raw bytes (a uint8 array), the ring's shape, the Rust type)."""
    if dtype == "float16":
        return np.dtype(np.float16), np.arange(1 << 16, dtype="<u2").view(np.uint8), (1 << 16,), "f16"
    if dtype == "bfloat16":
        return np.dtype(need_ml_dtypes()), np.arange(1 << 16, dtype="<u2").view(np.uint8), (1 << 16,), "bf16"
    if dtype == "complex64":
        return np.dtype(np.complex64), pairs(F32_SPECIAL, "<u4").view(np.uint8), (16, 16), "c64"
    if dtype == "complex128":
        return np.dtype(np.complex128), pairs(F64_SPECIAL, "<u8").view(np.uint8), (16, 16), "c128"
    if dtype == "bool":
        return np.dtype(bool), np.arange(256, dtype=np.uint8), (16, 16), "bool"
    raise AssertionError(dtype)


def arrangements(raw, dtype):
    """ITEMS arrangements of the values `raw` (bytes), each element moved one place along per
    item, as bytes."""
    per = raw.reshape(-1, dtype.itemsize)
    return [np.roll(per, -k, axis=0).reshape(-1).copy() for k in range(ITEMS)]


DTYPES = ["float16", "bfloat16", "complex64", "complex128", "bool"]


@pytest.fixture
def names(name):
    """Two ring names (the typed ring and the bytes ring), removed afterwards."""
    other = name + "b"
    yield name, other
    try:
        ndring.remove(other)
    except ndring.NotFound:
        pass


@pytest.mark.parametrize("way", ["send", "claim", "send_strided", "broadcast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_python_writer_to_rust_reader_byte_exact(names, dtype, way):
    typed, raw_ring = names
    dt, raw, shape, rust = pattern(dtype)
    sent = arrangements(raw, dt)
    out = ndring.Consumer.create(raw_ring, shape=raw.size, dtype=np.uint8, slots=ITEMS + 1)
    if way == "broadcast":
        tx = ndring.BroadcastWriter.create(typed, shape=shape, dtype=dt, slots=ITEMS + 2)
    else:
        tx = ndring.Producer.create(typed, shape=shape, dtype=dt, slots=ITEMS + 1)
    assert tx.dtype == dt
    relay = Relay("to-bytes", typed, raw_ring)
    try:
        kind = "broadcast" if way == "broadcast" else "spsc"
        assert relay.header == f"{typed}: {kind} {rust} {list(shape)}"
        for b in sent:
            a = b.view(dt).reshape(shape)
            if way == "claim":
                with tx.claim(timeout=60) as frame:
                    assert frame.dtype == dt and frame.shape == shape
                    frame.view(np.uint8)[...] = b.reshape(frame.view(np.uint8).shape)
            elif way == "send_strided":
                # A non-contiguous array of the ring's dtype: every other element of a wider one.
                wide = np.zeros(shape[:-1] + (2 * shape[-1],), dtype=dt)
                wide[..., ::2] = a
                assert not wide[..., ::2].flags.c_contiguous
                tx.send(wide[..., ::2], timeout=60)
            elif way == "broadcast":
                tx.send(a)
            else:
                tx.send(a, timeout=60)
        tx.close()
        for k, b in enumerate(sent):
            got = out.recv(timeout=60)
            assert got.dtype == np.uint8 and got.shape == b.shape
            differ = np.flatnonzero(got != b)
            assert differ.size == 0, (
                f"item {k}: byte {differ[0]} reached Rust as {got[differ[0]]:#04x}, "
                f"sent {b[differ[0]]:#04x}")
            del got
        with pytest.raises(ndring.Closed):
            out.recv(timeout=60)
        relay.finish()
    finally:
        relay.kill()


def as_reader_sees(b, dt):
    """The bytes a Python reader's array holds for stored bytes `b`: bool made 0/1."""
    return (b != 0).astype(np.uint8) if dt == np.dtype(bool) else b


@pytest.mark.parametrize("way", ["recv", "iterate", "recv_copy", "recv_into", "broadcast"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rust_writer_to_python_reader_byte_exact(names, dtype, way):
    typed, raw_ring = names
    dt, raw, shape, rust = pattern(dtype)
    sent = arrangements(raw, dt)
    if way == "broadcast":
        # The relay takes over the writer role of a ring made here: made with keep, then left.
        with ndring.BroadcastWriter.create(typed, shape=shape, dtype=dt, slots=ITEMS + 2, keep=True):
            pass
        rx = ndring.Subscriber.open(typed, start="oldest")
    else:
        rx = ndring.Consumer.create(typed, shape=shape, dtype=dt, slots=ITEMS + 1)
    assert rx.dtype == dt
    tx = ndring.Producer.create(raw_ring, shape=raw.size, dtype=np.uint8, slots=ITEMS + 1)
    relay = Relay("from-bytes", raw_ring, typed)
    try:
        kind = "broadcast" if way == "broadcast" else "spsc"
        assert relay.header == f"{typed}: {kind} {rust} {list(shape)}"
        for b in sent:
            tx.send(b, timeout=60)
        tx.close()
        received = iter(rx) if way == "iterate" else None
        for k, b in enumerate(sent):
            if way == "recv_copy":
                got = rx.recv_copy(timeout=60)
            elif way == "recv_into":
                got = np.full(shape, 1, dtype=dt)
                assert rx.recv_into(got, timeout=60) == k + 1
            elif way == "iterate":
                got = next(received)
            else:
                got = rx.recv(timeout=60)
            assert got.dtype == dt and got.shape == shape
            want = as_reader_sees(b, dt)
            differ = np.flatnonzero(got.reshape(-1).view(np.uint8) != want)
            assert differ.size == 0, (
                f"item {k}: byte {differ[0]} read {got.reshape(-1).view(np.uint8)[differ[0]]:#04x}"
                f", the Rust writer stored {b[differ[0]]:#04x}")
            if way in ("recv", "iterate", "broadcast"):
                assert ndring.info(got).seq == k + 1
            if way in ("recv", "iterate"):
                assert not got.flags.writeable
            del got
        if way == "iterate":
            assert list(received) == []
        else:
            with pytest.raises(ndring.Closed):
                rx.recv(timeout=60)
        relay.finish()
    finally:
        relay.kill()


def test_values_read_from_a_rust_writer(names):
    """Not only the bytes: numpy reads the values a Rust writer stored as those values."""
    bf16 = need_ml_dtypes()
    typed, raw_ring = names
    cases = [
        (np.float16, "<u2", [0x3C00, 0x7C00, 0xFC00, 0x0001, 0x8000, 0x7E01, 0x7C01],
         [1.0, np.inf, -np.inf, 2.0 ** -24, -0.0, np.nan, np.nan]),
        (bf16, "<u2", [0x3F80, 0x7F80, 0xFF80, 0x0001, 0x8000, 0x7FC1, 0x7F81],
         [1.0, np.inf, -np.inf, 2.0 ** -133, -0.0, np.nan, np.nan]),
    ]
    for dt, bits_type, bits, values in cases:
        rx = ndring.Consumer.create(typed, shape=len(bits), dtype=dt)
        tx = ndring.Producer.create(raw_ring, shape=2 * len(bits), dtype=np.uint8)
        relay = Relay("from-bytes", raw_ring, typed)
        try:
            tx.send(np.array(bits, dtype=bits_type).view(np.uint8), timeout=60)
            tx.close()
            a = rx.recv(timeout=60)
            with np.errstate(invalid="ignore"):  # signalling NaNs, converted
                got = a.astype(np.float64)
            np.testing.assert_array_equal(got, values)  # NaN equals NaN here
            assert np.signbit(got[4]) and np.isnan(got[5:]).all()
            del a
            relay.finish()
        finally:
            relay.kill()
        rx.detach()
        tx.detach()
        for n in names:
            try:
                ndring.remove(n)
            except ndring.NotFound:
                pass
    # complex: (re, im) in that order.
    rx = ndring.Consumer.create(typed, shape=2, dtype=np.complex64)
    tx = ndring.Producer.create(raw_ring, shape=16, dtype=np.uint8)
    relay = Relay("from-bytes", raw_ring, typed)
    try:
        tx.send(np.array([1.5, -2.0, np.inf, np.nan], dtype="<f4").view(np.uint8), timeout=60)
        tx.close()
        a = rx.recv(timeout=60)
        assert a[0] == 1.5 - 2.0j and a[1].real == np.inf and np.isnan(a[1].imag)
        del a
        relay.finish()
    finally:
        relay.kill()


def test_bool_bytes_other_than_0_and_1_from_a_rust_writer(names):
    """A Rust writer may store any byte in a bool ring (`Bool8::from_byte`): a Python reader sees
    every nonzero byte as True, in an array of 0/1 bytes (a copy: the slot released at once),
    and an item of 0/1 bytes over its slot. Every position of the word-at-a-time check (two
    words and three bytes) gets each kind of byte."""
    typed, raw_ring = names
    n = 19
    base = (np.arange(n) % 3 == 0).astype(np.uint8)
    odd = [2, 3, 0x7F, 0x80, 0xFE, 0xFF]
    stored = [base] + [base.copy() for _ in range(n * len(odd))]
    for (at, b), item in zip(itertools.product(range(n), odd), stored[1:]):
        item[at] = b
    stored.append(np.ones(n, np.uint8))
    rx = ndring.Consumer.create(typed, shape=n, dtype=bool, slots=4)
    tx = ndring.Producer.create(raw_ring, shape=n, dtype=np.uint8, slots=4)
    relay = Relay("from-bytes", raw_ring, typed)
    try:
        for k, b in enumerate(stored):
            tx.send(b, timeout=60)
            a = rx.recv(timeout=60)
            canonical = bool(np.all(b <= 1))
            assert a.dtype == bool and not a.flags.writeable
            np.testing.assert_array_equal(a.view(np.uint8), (b != 0).astype(np.uint8), f"item {k}")
            np.testing.assert_array_equal(a, b != 0)
            assert ndring.info(a).seq == k + 1
            # Zero copy (the array holds the slot) only where numpy reads the bytes as stored.
            assert rx.held == (1 if canonical else 0), (k, b)
            # Every numpy operation agrees with the truth values.
            assert a.sum() == np.count_nonzero(b) and (a & True).sum() == np.count_nonzero(b)
            assert (a == True).sum() == np.count_nonzero(b)  # noqa: E712
            del a
        tx.close()
        relay.finish()
    finally:
        relay.kill()


BF16_WITHOUT_ML_DTYPES = """
import sys
sys.modules["ml_dtypes"] = None        # `import ml_dtypes` fails, as where it is not installed
import numpy as np, ndring

def check(call, *needles):
    try:
        call()
    except ndring.InvalidType as e:
        assert isinstance(e, TypeError)
        for n in needles:
            assert n in str(e), (n, str(e))
    else:
        raise AssertionError("no error")

name, broadcast = sys.argv[1], sys.argv[2]
check(lambda: ndring.Producer.create(name + "x", shape=4, dtype="bfloat16"),
      "bfloat16 rings need the ml_dtypes package", "pip install ml_dtypes")
check(lambda: ndring.Consumer.open(name), "bfloat16 rings need the ml_dtypes package")
check(lambda: ndring.Producer.open(name), "ml_dtypes")
check(lambda: ndring.Subscriber.open(broadcast), "ml_dtypes")
check(lambda: ndring.BroadcastWriter.open(broadcast), "ml_dtypes")
[r] = ndring.list(name)
assert r.dtype == "bfloat16", r.dtype
from ndring.__main__ import element
assert element(r.dtype) == "bf16"
print("ok")
"""


def test_bfloat16_without_ml_dtypes_says_what_to_install(name):
    """In a process where `import ml_dtypes` fails, a bfloat16 ring (made here, with it) cannot
    be created or attached: `ndring.InvalidType` naming the package; `ndring.list` names the
    dtype; the ring is left as it was (no registration made and undone)."""
    bf16 = need_ml_dtypes()
    broadcast = name + "c"
    rx = ndring.Consumer.create(name, shape=4, dtype=bf16)
    w = ndring.BroadcastWriter.create(broadcast, shape=4, dtype="bfloat16", keep=True)
    w.detach()  # its writer role free: BroadcastWriter.open would take it
    try:
        r = subprocess.run([sys.executable, "-c", BF16_WITHOUT_ML_DTYPES, name, broadcast],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
        [info] = ndring.list(name)
        assert info.dtype == np.dtype(bf16) and info.peers == 1
        [info] = ndring.list(broadcast)
        assert info.peers_alive == 0  # nothing registered by the refused attaches
        assert not ndring.list(name + "x")
    finally:
        rx.detach()
        ndring.remove(broadcast)


def test_dtypes_as_listed_and_in_messages(names):
    """`ndring.list` and `python -m ndring ls` show each new dtype (the ls column as `ndring ls`
    prints it: f16, bf16, c64, c128, bool); opening with another dtype names both; an unheld
    dtype's message lists every one held, bfloat16 with its package."""
    typed, _ = names
    bf16 = need_ml_dtypes()
    made = []
    try:
        for i, (dt, short) in enumerate([(np.float16, "f16"), (bf16, "bf16"),
                                         (np.complex64, "c64"), (np.complex128, "c128"),
                                         (bool, "bool")]):
            ring = f"{typed}-{i}"
            made.append(ndring.Producer.create(ring, shape=(2, 3), dtype=dt, keep=True))
            [r] = ndring.list(ring)
            assert r.dtype == np.dtype(dt)
            ls = subprocess.run([sys.executable, "-m", "ndring", "ls", ring],
                                capture_output=True, text=True, timeout=60)
            assert ls.returncode == 0, ls.stderr
            row = [ln.split() for ln in ls.stdout.splitlines() if ln.startswith(ring + " ")]
            assert row and row[0][2] == short, ls.stdout
        with pytest.raises(ndring.Mismatch) as e:
            ndring.Producer.open_or_create(f"{typed}-0", shape=(2, 3), dtype=bool)
        assert "expected bool, the ring holds float16" in str(e.value)
        with pytest.raises(ndring.InvalidType) as e:
            ndring.Producer.create(typed, shape=1, dtype=np.longdouble)
        for n in ["uint8", "float16", "float32", "float64", "bfloat16 (with ml_dtypes)",
                  "complex64", "complex128", "or bool elements", "not float128"]:
            assert n in str(e.value), (n, str(e.value))
    finally:
        for tx in made:
            ring = tx.name
            tx.detach()
            ndring.remove(ring)
