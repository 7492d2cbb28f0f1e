"""Reported holes (segfaults, hangs, silent misreads), each reproduced in a child interpreter: a
crash or a hang fails the test instead of ending the run. Every child prints what it observed;
the test checks its exit status and those lines. Ring names come from the `name` fixture
(unique, with the pid; removed afterwards)."""

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """\
import os, sys
import numpy as np
import ndring
name = sys.argv[1] if len(sys.argv) > 1 else None
"""


def run_child(code, *args, timeout=60):
    """Runs `code` in a fresh interpreter; returns its stdout once it exited with status 0."""
    r = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, (
        f"child exited with {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    )
    return r.stdout.splitlines()


# --- 2. A claimed array that survives publish ------------------------------------------------


def test_zero_d_claim_target_is_emptied_at_publish(name):
    # A ring of shape=(): the `with` target is 0-d, which had no dimension to empty; it then read
    # later items through the slot, and segfaulted after detach.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            with tx.claim() as f:
                f[...] = 7
            print("after", f.shape, f.flags.writeable, f.base is None, f.nbytes)
            items = [int(rx.recv())]
            for v in (8, 9, 10):                  # 9 goes into f's old slot
                tx.send(np.array(v), timeout=10)
                items.append(int(rx.recv()))
            print("items", items)
        finally:
            ndring.remove(name)
        tx.detach()
        rx.detach()
        print("detached", f.shape, f.size, repr(f), f.sum())
        """,
        name,
    )
    assert out == [
        "after (0,) False True 0",
        "items [7, 8, 9, 10]",
        "detached (0,) 0 array([], dtype=int64) 0",
    ]


def test_target_reshaped_to_0d_in_the_block_is_emptied_at_publish(name):
    # The reproduction: one void element covering the whole slot, shape ().
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(4,), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            with tx.claim() as f:
                f[...] = 7
                f.shape = (f.size,)
                f.dtype = np.dtype(("V", f.nbytes))
                f.shape = ()
            print("after", f.shape, f.dtype, f.nbytes, f.flags.writeable, f.base is None)
            tx.send(np.full(4, 8, np.int64))
            print("items", rx.recv().tolist(), rx.recv().tolist())
        finally:
            ndring.remove(name)
        tx.detach()
        rx.detach()
        print("detached", repr(f))
        """,
        name,
    )
    assert out == [
        "after (0,) |V32 0 False True",
        "items [7, 7, 7, 7] [8, 8, 8, 8]",
        "detached array([], dtype='|V32')",
    ]


def test_emptied_target_cannot_reach_the_slot_again(name):
    # Whatever the block did to shape, dtype or strides, the emptied target stays at 0 bytes.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(2, 4), dtype=np.int64, slots=2)
        try:
            with tx.claim() as f:
                f[...] = 1
                f.shape = (4, 2)
                f.dtype = np.int8
                f.strides = (16, 1)
            print("after", f.shape, f.size, f.nbytes, f.base is None)
            tries = [
                lambda: setattr(f, "shape", (4, 16)),
                lambda: setattr(f, "dtype", np.dtype(("V", 64))),
                lambda: setattr(f, "strides", (0, 1)),
                lambda: f.resize((4, 16)),
                lambda: f.setflags(write=True),
            ]
            for t in tries:
                try:
                    t()
                except (ValueError, TypeError, AttributeError):
                    pass
                print("size", f.size, f.nbytes)
        finally:
            ndring.remove(name)
        tx.detach()
        print("detached", f.size, f.tobytes())
        """,
        name,
    )
    assert out[0] == "after (0, 16) 0 0 True"
    assert out[1:-1] == ["size 0 0"] * 5
    assert out[-1] == "detached 0 b''"


def test_zero_d_target_with_a_surviving_view_raises_buffererror(name):
    # The other way to stay sound: a view kept past the block refuses the publish, and the slot
    # stays claimed (readable by that view alone) until it goes, then is abandoned.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            claim = tx.claim()
            try:
                with claim as f:
                    f[...] = 7
                    g = f[...]
            except BufferError as e:
                print("BufferError", "still alive" in str(e))
            print("target", f.shape, "view", g.shape, int(g), "seq", claim.seq)
            del g
            for v in (8, 9):                      # both slots: g's is free again once g went
                tx.send(np.array(v), timeout=10)
            print("next", int(rx.recv()), int(rx.recv()))
        finally:
            ndring.remove(name)
        tx.detach()
        rx.detach()
        """,
        name,
    )
    assert out == ["BufferError True", "target (0,) view () 7 seq None", "next 8 9"]


def test_zero_d_target_abandoned_on_exception_is_emptied(name):
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            claim = tx.claim()
            try:
                with claim as f:
                    f[...] = 7
                    raise KeyError("boom")
            except KeyError:
                print("raised")
            print("target", f.shape, f.base is None, "seq", claim.seq)
            for v in (8, 9):                      # both slots: the abandoned one came back
                with tx.claim(timeout=10) as f2:
                    f2[...] = v
            print("next", f2.shape, int(rx.recv()), int(rx.recv()))
        finally:
            ndring.remove(name)
        tx.detach()
        rx.detach()
        print(repr(f), repr(f2))
        """,
        name,
    )
    assert out == [
        "raised",
        "target (0,) True seq None",
        "next (0,) 8 9",
        "array([], dtype=int64) array([], dtype=int64)",
    ]


# --- 3. The Lease type (and every type of the module) can be changed ----------------------------

LEASE_PROBE = """
def attempt(label, f):
    try:
        f()
    except TypeError as e:
        print(label, "TypeError", e)
    else:
        print(label, "allowed")

def set_new():
    ndring.Lease.__new__ = staticmethod(lambda cls: object.__new__(cls))

def del_seq():
    del ndring.Lease.seq

attempt("set __new__", set_new)
attempt("del seq", del_seq)
attempt("call", lambda: ndring.Lease())
attempt("object.__new__", lambda: object.__new__(ndring.Lease))
# Whatever got through above: reading an object made without recv must raise, not crash.
try:
    obj = ndring.Lease()
except TypeError:
    print("no object")
else:
    attempt("timestamp_ns", lambda: obj.timestamp_ns)
    attempt("repr", lambda: repr(obj))
"""


def test_lease_type_cannot_be_changed_or_instantiated():
    out = run_child(LEASE_PROBE)
    if sys.version_info >= (3, 10):
        assert out == [
            "set __new__ TypeError cannot set '__new__' attribute of immutable type "
            "'ndring.Lease'",
            "del seq TypeError cannot set 'seq' attribute of immutable type 'ndring.Lease'",
            "call TypeError cannot create 'ndring.Lease' instances",
            "object.__new__ TypeError object.__new__(ndring.Lease) is not safe, use "
            "ndring.Lease.__new__()",
            "no object",
        ]
    else:
        # 3.9 has no immutable heap types: a zeroed Lease can be made, and is refused on use.
        assert out[-2:] == [
            "timestamp_ns TypeError this ndring.Lease was not made by recv (uninitialised)",
            "repr TypeError this ndring.Lease was not made by recv (uninitialised)",
        ]


@pytest.mark.skipif(sys.version_info < (3, 10), reason="immutable heap types are 3.10+")
def test_every_type_of_the_module_is_immutable(name):
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(2,), dtype=np.uint8, slots=2)
        try:
            claim = tx.claim()
            with claim as f:
                slot_type = type(f.base.base)   # the claim's private slot holder
                f[...] = 1
            types = [ndring.Producer, ndring.Consumer, ndring.BroadcastWriter,
                     ndring.Subscriber, ndring.Claim, ndring.Lease, slot_type]
            for t in types:
                made = []
                for how in (
                    lambda: setattr(t, "__new__", staticmethod(lambda cls: object.__new__(cls))),
                    lambda: delattr(t, "__repr__"),
                    lambda: setattr(t, "extra", 1),
                    lambda: made.append(t()),
                    lambda: made.append(object.__new__(t)),
                ):
                    try:
                        how()
                    except TypeError:
                        continue
                    print(t.__name__, "changed or made")
                print(t.__name__, "immutable" if t.__flags__ & (1 << 8) else "mutable")
        finally:
            ndring.remove(name)
        tx.detach()
        """,
        name,
    )
    assert out == [
        f"{t} immutable"
        for t in ["Producer", "Consumer", "BroadcastWriter", "Subscriber", "Claim", "Lease",
                  "ClaimedSlot"]
    ]


# --- 4. ndring.info on a .base chain that loops --------------------------------------------------


def test_info_refuses_a_base_chain_that_loops_or_never_ends(name):
    out = run_child(
        """
        def show(obj):
            try:
                ndring.info(obj)
            except TypeError as e:
                print("TypeError", e)

        class C:
            pass

        c = C(); c.base = c
        show(c)                                   # the issue's reproduction
        a, b = C(), C(); a.base = b; b.base = a
        show(a)

        class Endless:
            @property
            def base(self):
                return Endless()                  # a new object every time: no cycle by identity
        show(Endless())

        # Received arrays and views of them (numpy's and as_strided's) still find their Lease.
        tx = ndring.Producer.create(name, shape=(4,), dtype=np.uint8, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            tx.send(np.arange(4, dtype=np.uint8))
            x = rx.recv()
            strided = np.lib.stride_tricks.as_strided(x[1:], shape=(2,), strides=(1,))
            print("seq", ndring.info(x).seq, ndring.info(x[::2].T).seq, ndring.info(strided).seq)
            wrapped = x
            for _ in range(10):                   # past the unrolled hops: the bounded walk
                w = C(); w.base = wrapped; wrapped = w
            lease = ndring.info(x)
            print("walk", ndring.info(wrapped) is lease, ndring.info(lease) is lease)
            show(np.zeros(3))
        finally:
            ndring.remove(name)
        """,
        name,
        timeout=60,
    )
    assert out == [
        "TypeError not an array received from an ndring ring (nor a view of one): its chain of "
        ".base objects loops back on itself",
        "TypeError not an array received from an ndring ring (nor a view of one): its chain of "
        ".base objects loops back on itself",
        "TypeError not an array received from an ndring ring (nor a view of one): its chain of "
        ".base objects is longer than 256",
        "seq 1 1 1",
        "walk True True",
        "TypeError not an array received from an ndring ring (nor a view of one)",
    ]


# --- 5. Arrays received before fork --------------------------------------------------------------


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_array_received_before_fork_keeps_its_item_in_the_child(name):
    # A child forked while the parent holds a received array gets a private snapshot of the
    # ring (python/src/fork.rs): once the parent drops its copy and the producer refills the
    # slot, the child still reads the item it was handed, never the later one.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(4,), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            tx.send(np.full(4, 1, np.int64))
            a = rx.recv()                             # slot 0
            go_r, go_w = os.pipe()
            res_r, res_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.read(go_r, 1)                      # the parent refilled the slot
                os.write(res_w, repr(a.tolist()).encode())
                os._exit(0)
            del a                                     # the parent's copy: slot 0 goes back
            tx.send(np.full(4, 2, np.int64), timeout=10)  # slot 1
            tx.send(np.full(4, 3, np.int64), timeout=10)  # slot 0, refilled
            os.write(go_w, b"x")
            print("child read", os.read(res_r, 100).decode())
            _, status = os.waitpid(pid, 0)
            print("child status", status)
            print("parent recv", rx.recv(timeout=10).tolist(), rx.recv(timeout=10).tolist())
        finally:
            ndring.remove(name)
        """,
        name,
    )
    assert out == [
        "child read [1, 1, 1, 1]",
        "child status 0",
        "parent recv [2, 2, 2, 2] [3, 3, 3, 3]",
    ]


def test_claim_forked_inside_its_block_cannot_write_into_the_ring(name):
    # A child forked inside a `with claim()` block writes into its copy of the target: private
    # memory, so neither the item the parent publishes nor any later one changes.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(4,), dtype=np.int64, slots=2)
        rx = ndring.Consumer.open(name)
        try:
            go_r, go_w = os.pipe()
            done_r, done_w = os.pipe()
            with tx.claim() as f:
                f[:] = 1
                pid = os.fork()
                if pid == 0:
                    os.read(go_r, 1)                  # the parent published and sent again
                    f[:] = 99
                    os.write(done_w, b"x")
                    os._exit(0)
            tx.send(np.full(4, 2, np.int64), timeout=10)
            os.write(go_w, b"x")
            os.read(done_r, 1)
            _, status = os.waitpid(pid, 0)
            print("child status", status)
            print("parent recv", rx.recv(timeout=10).tolist(), rx.recv(timeout=10).tolist())
        finally:
            ndring.remove(name)
        """,
        name,
    )
    assert out == ["child status 0", "parent recv [1, 1, 1, 1] [2, 2, 2, 2]"]


def test_fork_with_no_array_alive_copies_nothing(name):
    # Forking while holding handles but no array over a slot leaves the child's mapping shared
    # (no snapshot): what the parent sends after the fork is visible to a child that reads the
    # ring's header through the inspector.
    out = run_child(
        """
        tx = ndring.Producer.create(name, shape=(4,), dtype=np.int64, slots=2)
        try:
            tx.send(np.full(4, 1, np.int64))
            maps_before = open("/proc/self/maps").read().count("/dev/shm/")
            pid = os.fork()
            if pid == 0:
                shared = [l for l in open("/proc/self/maps") if "/dev/shm/" in l]
                os._exit(0 if len(shared) == maps_before else 3)
            _, status = os.waitpid(pid, 0)
            print("child status", status)
        finally:
            ndring.remove(name)
        """,
        name,
    )
    assert out == ["child status 0"]
