"""Crash-safe names from Python (issue 26): ndring.list() shows the rings of the machine as
`ndring ls --json` does, `python -m ndring ls|rm` works from a pip install, and a stale ring is
listed as stale and removable."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ndring


def cli(*args):
    """Runs `python -m ndring ARGS`; returns (exit status, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "ndring", *args], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, r.stdout, r.stderr


def only(name):
    [r] = ndring.list(name)
    return r


def test_list_shows_a_live_ring_with_its_fields(name):
    tx = ndring.Producer.create(name, shape=(2, 3), dtype=np.uint16, slots=8, kind="mpmc")
    rx = ndring.Consumer.open(name)
    for _ in range(3):
        tx.send(np.zeros((2, 3), np.uint16))
    r = only(name)
    assert isinstance(r, ndring.RingInfo)
    assert (r.name, r.kind, r.dtype, r.shape, r.slots) == (name, "mpmc", np.dtype(np.uint16),
                                                          (2, 3), 8)
    assert r.size > 8 * 12 and os.path.getsize(f"/dev/shm{name}") == r.size
    assert (r.state, r.creator_pid, r.creator_alive) == ("live", os.getpid(), True)
    assert (r.peers, r.peers_alive, r.published, r.closed) == (2, 2, 3, False)
    assert r.programs == [this_program()], "what is attached, by program name"
    assert r in ndring.list()
    # Patterns as `ndring ls` takes them: with or without the slash.
    assert ndring.list(name[1:]) == [r] and r in ndring.list(name[:-1] + "?")
    assert ndring.list("/no-such-ring-*") == []
    with pytest.raises(ndring.InvalidType):
        ndring.list(5)
    tx.close()
    assert only(name).state == "closed" and only(name).closed
    del rx


def test_list_shows_a_stale_ring(name, make_stale):
    dead = make_stale(name)
    r = only(name)
    assert (r.state, r.creator_pid, r.creator_alive) == ("stale", dead, False)
    assert (r.kind, r.dtype, r.shape, r.published) == ("spsc", np.dtype(np.uint8), (4,), 1)
    assert (r.peers, r.peers_alive) == (1, 0)
    assert r.programs == [], "a dead peer has no program"


def test_an_unfinished_segment(name):
    # ndring's magic and nothing else: a creator that died before its header was written.
    with open(f"/dev/shm{name}", "wb") as f:
        f.write(b"NDRING\0\x01" + bytes(4088))
    r = only(name)
    assert r.state == "unfinished" and r.size == 4096
    assert (r.kind, r.dtype, r.shape, r.slots, r.creator_pid, r.creator_alive) == (
        None, None, None, None, None, False)
    # A create replaces it only when asked to.
    with pytest.raises(ndring.Stale):
        ndring.Producer.create(name, shape=1, dtype=np.uint8)
    with ndring.Producer.create(name, shape=1, dtype=np.uint8, replace_stale=True, keep=True):
        assert (only(name).state, only(name).shape) == ("live", (1,))


def test_python_m_ndring_ls(name, make_stale):
    tx = ndring.Producer.create(name, shape=(2, 3), dtype=np.float32, slots=4)
    tx.send(np.zeros((2, 3), np.float32))
    stale = name + "s"
    make_stale(stale)
    try:
        code, out, err = cli("ls", name[:-1] + "*")
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "KIND", "DTYPE", "SHAPE", "SLOTS", "SIZE", "STATE",
                                    "CREATOR", "PEERS", "PUBLISHED"]
        mine = [ln.split() for ln in lines if ln.startswith(name + " ")]
        assert len(mine) == 1
        # NAME KIND DTYPE SHAPE SLOTS SIZE (a number and a unit) STATE CREATOR PEERS
        assert mine[0][:5] == [name, "spsc", "f32", "2x3", "4"] and mine[0][7] == "live"
        assert mine[0][8] == str(os.getpid())
        [dead] = [ln.split() for ln in lines if ln.startswith(stale + " ")]
        assert dead[7] == "stale" and dead[9] == "(dead)"

        code, out, err = cli("ls", "--json", name[1:])
        assert code == 0, err
        [row] = json.loads(out)
        assert row == {
            "name": name, "kind": "spsc", "dtype": "f32", "shape": [2, 3], "slots": 4,
            "size": only(name).size, "state": "live", "creator_pid": os.getpid(),
            "creator_alive": True, "peers": 1, "peers_alive": 1, "published": 1, "closed": False,
            "programs": [this_program()],
        }
        code, out, _ = cli("ls", "/no-such-ring-*")
        assert (code, out) == (0, "no rings in /dev/shm\n")
    finally:
        ndring.remove(stale)


def test_python_m_ndring_rm(name, make_stale):
    tx = ndring.Producer.create(name, shape=1, dtype=np.uint8)
    code, _, err = cli("rm", name)
    assert code == 1 and "in use by" in err and "--force" in err
    assert only(name).state == "live"
    tx.send(np.zeros(1, np.uint8))  # an unread item keeps the name once tx is gone
    del tx
    stale = name + "s"
    make_stale(stale)
    code, out, err = cli("rm", "--stale", "--dry-run", name[:-1] + "*")
    assert code == 0, err
    assert f"would remove {stale} (stale spsc ring of u8 4, " in out
    assert ndring.list(stale)
    code, out, err = cli("rm", stale[1:])
    assert code == 0, err
    assert out.startswith(f"removed {stale} (stale spsc ring of u8 4, ")
    assert not ndring.list(stale)
    code, _, err = cli("rm", stale)
    assert code == 1 and "no such ring" in err
    # Our own handle is gone: the ring is stale only once nobody is attached, but this process
    # (its creator) lives, so only --force removes it.
    code, _, err = cli("rm", name)
    assert code == 1 and "its creator" in err
    code, out, err = cli("rm", "--force", name)
    assert code == 0 and f"removed {name}" in out, err
    with pytest.raises(ndring.NotFound):
        ndring.remove(name)


def test_python_m_ndring_usage():
    code, _, err = cli()
    assert code == 2 and "usage" in err
    code, _, err = cli("rm")
    assert code == 2 and "NAME" in err


def test_console_script_is_declared():
    # `ndring-py` (not `ndring`: that is the cargo-installed Rust command, a superset).
    text = open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")).read()
    assert 'ndring-py = "ndring.__main__:main"' in text
    from ndring.__main__ import main

    assert main(["ls", "/no-such-ring-*"]) == 0


def this_program():
    """This process's program name as /proc/self/comm gives it (what `ndring ls` shows)."""
    with open("/proc/self/comm") as f:
        return f.read().strip()
