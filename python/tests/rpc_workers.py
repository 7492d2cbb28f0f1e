"""Processes for test_rpc.py: servers and clients of a request/reply segment (spawned)."""

import os
import time

import numpy as np

import ndring

REQUEST = ((320, 320, 3), np.uint8)
REPLY = ((20, 6), np.float32)


def request(client, i):
    """A request whose content says who asked and which one it is."""
    rng = np.random.default_rng(client * 100_003 + i)
    a = rng.integers(0, 256, size=REQUEST[0], dtype=np.uint8)
    a[0, 0, :] = (client, i % 256, i // 256)
    return a


def answer(req):
    """The reply a request's content determines."""
    out = np.zeros(REPLY[0], np.float32)
    out[0, :3] = req[0, 0, :]
    out[1, 0] = float(req.sum(dtype=np.uint64) % (1 << 24))
    out[2:, :] = float(req[5, 7, 1])
    return out


def serve_until_stop(name, served):
    """Serves requests until one carries meta b"stop"; puts how many it answered on `served`."""
    srv = ndring.Server.open(name, timeout=10)
    n = 0
    for req in srv:
        stop = req.meta == b"stop"
        req.reply(answer(req.array))
        if stop:
            break
        n += 1
    served.put(n)
    srv.close()


def client_calls(name, client, count, errors):
    """`count` calls, each reply checked against its own request; puts the mismatches."""
    cli = ndring.Client.open(name, timeout=10)
    bad = 0
    for i in range(count):
        q = request(client, i)
        out = cli.call(q, timeout=20)
        if not np.array_equal(out, answer(q)):
            bad += 1
        del out
    errors.put((client, bad))
    cli.close()


def late_server(name, taken, first_delivered):
    """Answers the first request late (after its caller gave up), then serves until stop."""
    srv = ndring.Server.open(name, timeout=10)
    req = srv.recv(timeout=20)
    taken.put(True)
    time.sleep(0.5)
    first_delivered.put(req.reply(answer(req.array)))
    del req
    for req in srv:
        stop = req.meta == b"stop"
        req.reply(answer(req.array))
        if stop:
            break


def send_and_hang(name, client, count, ready):
    """Sends `count` requests, says so, and waits to be killed."""
    cli = ndring.Client.open(name, timeout=10)
    tickets = [cli.send(request(client, i)) for i in range(count)]
    ready.put(os.getpid())
    time.sleep(60)
    del tickets


def take_and_hang(name, ready):
    """Takes one request, says so, and waits to be killed holding it."""
    srv = ndring.Server.open(name, timeout=10)
    req = srv.recv(timeout=20)
    ready.put(req.array[0, 0, 1].item())
    time.sleep(60)
    del req


def serve_nothing_then_leave(name, ready, leave):
    """Creates the segment as its only server, and leaves (closing) when told."""
    srv = ndring.Server.create(name, request=REQUEST, reply=REPLY, clients=2)
    ready.put(True)
    leave.get(timeout=20)
    srv.close()
