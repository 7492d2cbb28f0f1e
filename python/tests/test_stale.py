"""`Producer.create` over a ring its previous producer left with items unread, each way a producer
process leaves (issue 26's table): SIGKILLed, Ctrl-C while blocked on a full ring, leaving its
`with` block (or ending) without `close()`. Each raises `ndring.Stale`, a `FileExistsError`,
whose message names the Python ways out (`replace_stale=True`, `ndring.remove(name)`) and no
Rust option; each is replaced by `replace_stale=True` and gone after `ndring.remove`. A producer
that called `close()` ended its stream: its name is free again even with items unread (the
consumer that was meant to read them never attached; a new stream may take the name)."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ndring

SEND_TWO = """
import sys, numpy as np, ndring
name, how = sys.argv[1], sys.argv[2]
tx = ndring.Producer.create(name, shape=4, dtype=np.uint8, slots=2)
tx.send(np.full(4, 7, np.uint8))
tx.send(np.full(4, 8, np.uint8))
print("full", flush=True)
if how == "block":
    tx.send(np.full(4, 9, np.uint8))        # the ring is full: blocks until the signal
elif how == "sleep":
    import time; time.sleep(60)
elif how == "close":
    tx.close()
elif how == "with":
    with tx:
        pass
"""


def leave(name, how):
    """A producer process that sends two items nobody reads into `name` and leaves `how`:
    "kill" (SIGKILL while sleeping), "ctrl-c" (SIGINT while blocked in send), "with" (its with
    block ends), "exit" (its interpreter ends), "close" (close(), then it ends)."""
    child_how = {"kill": "sleep", "ctrl-c": "block"}.get(how, how)
    p = subprocess.Popen([sys.executable, "-c", SEND_TWO, name, child_how],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "full\n", p.stderr.read()
        if how == "kill":
            p.kill()
        elif how == "ctrl-c":
            time.sleep(0.3)  # into the blocking send (the signal interrupts it at any point)
            p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if how == "ctrl-c":
        assert p.returncode != 0 and "KeyboardInterrupt" in err, err
    elif how != "kill":
        assert p.returncode == 0, err
    return p.pid


@pytest.mark.parametrize("how", ["kill", "ctrl-c", "with", "exit"])
def test_create_over_items_left_unread_raises_stale(name, how):
    dead = leave(name, how)
    with pytest.raises(ndring.Stale) as e:
        ndring.Producer.create(name, shape=4, dtype=np.uint8)
    assert isinstance(e.value, FileExistsError) and isinstance(e.value, ndring.Error)
    m = str(e.value)
    assert m == (f'a stale ring named "{name}" exists: its creator (pid {dead}) is dead; create '
                 f'with replace_stale=True to replace it, or remove it with '
                 f'ndring.remove("{name}")'), m
    assert "replace_stale(true)" not in m and "Config" not in m
    # The same for each create; open_or_create adopts it (a consumer gets the items).
    for create in (ndring.Consumer.create, ndring.BroadcastWriter.create):
        with pytest.raises(ndring.Stale):
            create(name, shape=4, dtype=np.uint8)
    with ndring.Consumer.open_or_create(name, shape=4, dtype=np.uint8) as rx:
        assert int(rx.recv(timeout=10)[0]) == 7
    # Left again by the consumer with one item unread: still stale; replaced when asked.
    with pytest.raises(ndring.Stale):
        ndring.Producer.create(name, shape=4, dtype=np.uint8)
    with ndring.Producer.create(name, shape=4, dtype=np.uint8, replace_stale=True) as tx:
        assert tx.shape == (4,)
        with ndring.Consumer.open(name) as rx:
            with pytest.raises(ndring.Timeout):
                rx.recv(timeout=0.01)  # a new ring: the old items are gone
        tx.close()


@pytest.mark.parametrize("how", ["kill", "ctrl-c", "exit"])
def test_remove_frees_a_stale_name(name, how):
    leave(name, how)
    [r] = ndring.list(name)
    assert r.state == "stale"
    ndring.remove(name)
    assert ndring.list(name) == []
    with ndring.Producer.create(name, shape=4, dtype=np.uint8) as tx:
        tx.close()


def test_create_after_close_with_items_unread_takes_the_name(name):
    leave(name, "close")
    # `ndring.list` calls it stale (nobody alive attached: safe to remove); create takes it.
    assert [r.state for r in ndring.list(name)] == ["stale"]
    with ndring.Producer.create(name, shape=4, dtype=np.uint8) as tx:
        with ndring.Consumer.open(name) as rx:
            with pytest.raises(ndring.Timeout):
                rx.recv(timeout=0.01)
        tx.close()
