"""Across real processes: Rust examples <-> Python, multiprocessing pools, fork, Ctrl-C."""

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ndring
import workers

REPO = Path(__file__).resolve().parents[2]


def example(name):
    """The path of a built Rust example, building it if needed (CI builds them beforehand)."""
    path = REPO / "target" / "release" / "examples" / name
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "--example", name], cwd=REPO, check=True)
    return path


def test_rust_producer_to_python_consumer_byte_exact(name):
    frames = 40
    rx = ndring.Consumer.create(name, shape=(480, 640, 3), dtype=np.uint8, slots=4)
    producer = subprocess.Popen(
        [example("producer"), name, "--frames", str(frames)], stdout=subprocess.DEVNULL
    )
    try:
        for n in range(frames):
            a = rx.recv(timeout=30)
            info = ndring.info(a)
            assert int.from_bytes(info.meta, "little") == n
            assert info.seq == n + 1 and info.timestamp_ns is None  # created here, no timestamps
            assert a.shape == (480, 640, 3) and np.all(a == n % 256), f"frame {n} differs"
            del a, info
        with pytest.raises(ndring.Closed):
            rx.recv(timeout=30)
    finally:
        assert producer.wait(timeout=30) == 0


def test_python_producer_to_rust_consumer(name):
    frames = 61
    tx = ndring.Producer.create(name, shape=(480, 640, 3), dtype=np.uint8, slots=4)
    consumer = subprocess.Popen([example("consumer"), name], stdout=subprocess.PIPE, text=True)
    for n in range(frames):
        with tx.claim(timeout=30, meta=n.to_bytes(8, "little")) as frame:
            frame[:] = n % 256
    tx.close()
    out, _ = consumer.communicate(timeout=30)
    assert consumer.returncode == 0, out
    # The Rust consumer prints every 30th frame's metadata and first byte, then the close.
    lines = [l for l in out.splitlines() if l.startswith("frame ")]
    assert [l.split(",")[0] for l in lines] == [f"frame {n}: first byte {n % 256}" for n in (0, 30, 60)]
    assert "the producer closed the ring" in out


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_pool_of_mpmc_workers_each_item_exactly_once(name, method):
    items = 300
    ctx = mp.get_context(method)
    with ndring.Producer.create(name, shape=(16,), dtype=np.int64, slots=4, kind="mpmc") as tx:
        with ctx.Pool(3) as pool:
            result = pool.map_async(workers.drain, [name] * 3)
            for i in range(items):
                tx.send(np.full(16, i, np.int64), timeout=60)
            tx.close()
            got = result.get(timeout=120)
    every = sorted(i for part in got for i in part)
    assert every == list(range(items)), "an item was lost or delivered twice"
    assert sum(1 for part in got if part) >= 1


def test_process_producer_with_spawn(name):
    rx = ndring.Consumer.create(name, shape=(8, 8), dtype=np.uint8)
    p = mp.get_context("spawn").Process(target=workers.produce, args=(name, 50, (8, 8)))
    p.start()
    for i in range(50):
        a = rx.recv(timeout=60)
        assert np.all(a == i % 256) and int.from_bytes(ndring.info(a).meta, "little") == i
    with pytest.raises(ndring.Closed):
        rx.recv(timeout=60)
    p.join(30)
    assert p.exitcode == 0


def test_handle_opened_before_fork_raises_in_child(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8)
    rx = ndring.Consumer.open(name)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=workers.use_inherited, args=(rx, q))
    p.start()
    message = q.get(timeout=30)
    p.join(30)
    assert "forked child" in message and str(os.getpid()) in message
    # The parent's handle is untouched by the child's exit.
    tx.send(np.array([4, 2], np.uint8))
    assert list(rx.recv(timeout=5)) == [4, 2]


def test_array_dropped_in_an_os_fork_child_keeps_the_parents_slot(name):
    # The process id the extension checks is cached and refreshed in fork children (no getpid
    # per call): a bare os.fork must be seen too, for handles and for received arrays alike.
    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8, slots=2)
    rx = ndring.Consumer.open(name)
    tx.send(np.array([1, 1], np.uint8))
    a = rx.recv(timeout=5)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drops the parent's array, then tries the parent's handle
        code = 0
        try:
            del a
            try:
                rx.recv(timeout=0)
                code = 2
            except ndring.Error as e:
                os.write(w, str(e).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        message = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "forked child" in message and str(pid) in message
    # The slot of `a` is still the parent's: one slot is left, then the ring is full until the
    # parent drops `a` (had the child released it, the producer would find room now).
    assert rx.held == 1
    tx.send(np.array([2, 2], np.uint8), timeout=5)
    with pytest.raises(ndring.Timeout):
        tx.send(np.array([3, 3], np.uint8), timeout=0)
    assert list(a) == [1, 1]
    del a
    tx.send(np.array([3, 3], np.uint8), timeout=5)
    assert [list(rx.recv(timeout=5)) for _ in range(2)] == [[2, 2], [3, 3]]


CHILD_BLOCKED_IN_RECV = """
import sys, ndring
rx = ndring.Consumer.open(sys.argv[1])
print("ready", flush=True)
try:
    rx.recv()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_interrupts_a_blocking_recv(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_BLOCKED_IN_RECV, name], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # let it reach the futex sleep
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=30)
    assert out.strip() == "interrupted"
    del tx


CHILD_UNPRIVILEGED = """
import os, sys, ndring
os.setuid(65534)
try:
    ndring.Consumer.open(sys.argv[1])
    print("opened")
except PermissionError as e:
    print(type(e).__name__, isinstance(e, ndring.Error), e)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_permission_denied(name):
    tx = ndring.Producer.create(name, shape=2, dtype=np.uint8)  # mode 0o600: creator only
    out = subprocess.run(
        [sys.executable, "-c", CHILD_UNPRIVILEGED, name], capture_output=True, text=True, timeout=60
    )
    assert out.stdout.startswith("PermissionDenied True"), out.stdout + out.stderr
    del tx
