"""Request and reply (ndring.Server / ndring.Client) across real processes: the Frigate pattern
with every reply checked against its own request, a late reply, a client and a server SIGKILLed,
the server leaving; and the lifetimes of the request's and the reply's arrays."""

import multiprocessing as mp
import os
import queue
import signal

import numpy as np
import pytest

import ndring
import rpc_workers as w

ctx = mp.get_context("spawn")
JOIN = 60


def reap(*procs):
    for p in procs:
        p.join(JOIN)
        if p.is_alive():
            p.kill()
            p.join()
            pytest.fail(f"process {p.name} hung")


def frigate(name, clients, servers, count):
    # The first server creates the segment (kept by this process as a server that never
    # serves, so the name lives until the test ends).
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=clients + 1)
    served, errors = ctx.Queue(), ctx.Queue()
    srvs = [ctx.Process(target=w.serve_until_stop, args=(name, served)) for _ in range(servers)]
    clis = [ctx.Process(target=w.client_calls, args=(name, c, count, errors)) for c in range(clients)]
    for p in srvs + clis:
        p.start()
    reap(*clis)
    assert [p.exitcode for p in clis] == [0] * clients
    assert sorted(errors.get(timeout=5) for _ in clis) == [(c, 0) for c in range(clients)]
    stopper = ndring.Client.open(name)
    for _ in srvs:
        stopper.call(np.zeros(w.REQUEST[0], np.uint8), timeout=20, meta=b"stop")
    reap(*srvs)
    total = sum(served.get(timeout=5) for _ in srvs)
    assert total == clients * count, "a request answered twice or lost"
    stopper.close()
    holder.close()


def test_frigate_two_clients_one_server(name):
    frigate(name, clients=2, servers=1, count=100)


def test_frigate_four_clients_two_servers(name):
    frigate(name, clients=4, servers=2, count=50)


def test_late_reply_is_discarded_and_the_next_call_gets_its_own(name):
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=2)
    taken, delivered = ctx.Queue(), ctx.Queue()
    srv = ctx.Process(target=w.late_server, args=(name, taken, delivered))
    srv.start()
    cli = ndring.Client.open(name)
    ticket = cli.send(w.request(0, 0))
    assert taken.get(timeout=20)
    with pytest.raises(ndring.Timeout):
        ticket.result(timeout=0.1)
    del ticket  # given up, as call(timeout=) does on Timeout
    assert delivered.get(timeout=20) is False, "the late reply was delivered"
    for i in range(1, 4):
        q = w.request(0, i)
        assert np.array_equal(cli.call(q, timeout=20), w.answer(q))
    cli.call(np.zeros(w.REQUEST[0], np.uint8), timeout=20, meta=b"stop")
    reap(srv)
    holder.close()


def test_client_sigkilled_between_send_and_receive(name):
    # Two calls in all: the dead client takes both; they come back within the grace period.
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=1, slots=2)
    ready = ctx.Queue()
    dead = ctx.Process(target=w.send_and_hang, args=(name, 5, 2, ready))
    dead.start()
    ready.get(timeout=20)
    os.kill(dead.pid, signal.SIGKILL)
    dead.join(JOIN)
    served = ctx.Queue()
    srv = ctx.Process(target=w.serve_until_stop, args=(name, served))
    srv.start()
    cli = ndring.Client.open(name)
    for i in range(5):
        q = w.request(1, i)
        assert np.array_equal(cli.call(q, timeout=20), w.answer(q))
    cli.call(np.zeros(w.REQUEST[0], np.uint8), timeout=20, meta=b"stop")
    reap(srv)
    assert served.get(timeout=5) >= 5
    holder.close()


def test_server_sigkilled_holding_a_request_fails_it_to_its_caller(name):
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=2)
    cli = ndring.Client.open(name)
    held = cli.send(w.request(2, 0))
    ready = ctx.Queue()
    hung = ctx.Process(target=w.take_and_hang, args=(name, ready))
    hung.start()
    assert ready.get(timeout=20) == 0
    queued = cli.send(w.request(2, 1))
    os.kill(hung.pid, signal.SIGKILL)
    hung.join(JOIN)
    with pytest.raises(ndring.RequestFailed):
        held.result(timeout=20)
    # The queued request is answered once, by the server left.
    req = holder.recv(timeout=20)
    assert req.array[0, 0, 1] == 1
    # (Not inside an assert: pytest's rewriting would keep req.array alive.)
    delivered = req.reply(w.answer(req.array))
    assert delivered is True
    del req
    assert np.array_equal(queued.result(timeout=20), w.answer(w.request(2, 1)))
    assert holder.try_recv() is None, "a request served twice"
    cli.close()
    holder.close()


def test_disconnected_when_the_server_leaves(name):
    ready, leave = ctx.Queue(), ctx.Queue()
    srv = ctx.Process(target=w.serve_nothing_then_leave, args=(name, ready, leave))
    srv.start()
    ready.get(timeout=20)
    cli = ndring.Client.open(name, timeout=10)
    t = cli.send(w.request(0, 0))
    leave.put(True)
    reap(srv)
    with pytest.raises(ndring.Disconnected):
        t.result(timeout=20)
    with pytest.raises(ndring.Disconnected):
        cli.call(w.request(0, 1), timeout=20)
    cli.close()


def small(name, **kw):
    srv = ndring.Server.create(name, request=((4,), np.uint8), reply=((2,), np.float32), **kw)
    return srv, ndring.Client.open(name)


def test_reply_array_outlives_client_and_frees_its_call(name):
    srv, cli = small(name, clients=1, slots=2)
    t = cli.send(np.arange(4, dtype=np.uint8), meta=b"cam-3")
    req = srv.recv(timeout=5)
    assert (req.client, req.meta) == (os.getpid(), b"cam-3")
    assert not req.array.flags.writeable
    req.reply([req.array.sum(), 1.5])
    out = t.result(timeout=5)
    assert not out.flags.writeable
    view = out[:1]
    del out
    cli.close()
    assert view.tolist() == [6.0]
    # Both calls are free once the view is gone (two calls in flight at once).
    del view, t
    cli = ndring.Client.open(name)
    a, b = cli.send(np.ones(4, np.uint8)), cli.send(np.full(4, 2, np.uint8))
    for _ in range(2):
        r = srv.recv(timeout=5)
        with r.reply_array() as o:
            o[:] = r.array[0]
    assert b.result(5).tolist() == [2, 2] and a.result(5).tolist() == [1, 1]


def test_request_array_cannot_outlive_its_answer(name):
    srv, cli = small(name)
    t = cli.send(np.arange(4, dtype=np.uint8))
    req = srv.recv(timeout=5)
    kept = req.array[1:]
    with pytest.raises(BufferError):
        req.reply([0, 0])  # nothing sent while a view survives
    with pytest.raises(ndring.Timeout):
        t.result(timeout=0.05)
    del kept
    a = req.array
    with pytest.raises(BufferError):
        req.reply([0, 0])  # a name still bound to it
    del a
    assert req.reply([1, 2]) is True
    with pytest.raises(ndring.Error):
        req.array  # answered: the slot is the client's again
    assert t.result(timeout=5).tolist() == [1, 2]


def test_a_request_dropped_unanswered_fails_its_caller(name):
    srv, cli = small(name)
    t = cli.send(np.arange(4, dtype=np.uint8))
    for req in srv:
        break  # the loop moves on without answering
    del req
    with pytest.raises(ndring.RequestFailed) as e:
        t.result(timeout=5)
    assert isinstance(e.value, RuntimeError)


def test_wrong_request_type_or_shape(name):
    srv, cli = small(name)
    with pytest.raises(ndring.InvalidType):
        cli.call(np.zeros(4, np.float32), timeout=1)
    with pytest.raises(ndring.Mismatch):
        cli.call(np.zeros(5, np.uint8), timeout=1)
    assert srv.try_recv() is None


CHILD_BLOCKED = """
import sys, numpy as np, ndring
side = sys.argv[2]
if side == "server":
    srv = ndring.Server.open(sys.argv[1])
    print("ready", flush=True)
    wait = srv.recv
else:
    cli = ndring.Client.open(sys.argv[1])
    print("ready", flush=True)
    wait = lambda: cli.call(np.zeros(4, np.uint8))
try:
    wait()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("side", ["server", "client"])
def test_ctrl_c_interrupts_a_blocking_recv_or_call(name, side):
    import subprocess
    import sys
    import time

    srv, cli = small(name)  # this process serves nothing: the call waits for its reply
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_BLOCKED, name, side], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let it reach the futex sleep
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        assert out.strip() == "interrupted"
    finally:
        child.kill()
        child.wait()


def test_reply_array_views_cannot_outlive_the_block(name):
    srv, cli = small(name)
    t = cli.send(np.arange(4, dtype=np.uint8))
    req = srv.recv(timeout=5)
    block = req.reply_array()
    with pytest.raises(BufferError):
        with block as out:
            out[:] = 1
            with pytest.raises(ndring.Error):
                req.reply([0, 0])  # not while the block's array can write the reply
            kept = out[:1]
    kept[0] = 5  # still the slot's reply memory, which is why nothing can be sent now
    with pytest.raises(ndring.Error):
        req.reply([0, 0])
    with pytest.raises(ndring.Timeout):
        t.result(timeout=0.05)
    del req, block, out
    with pytest.raises(ndring.Timeout):
        t.result(timeout=0.05)  # `kept` still holds the request
    del kept
    with pytest.raises(ndring.RequestFailed):
        t.result(timeout=5)
