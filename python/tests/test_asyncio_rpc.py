"""asyncio for request and reply: `await cli.acall(q)`, `await ticket.aresult()`,
`await srv.arecv()` and `async for req in srv`, across processes. Every reply answers its own
request (two asyncio clients against a server process); a cancelled `acall` is given up (its
late reply discarded, the next call gets its own); a SIGKILLed server fails every pending
`acall`; an asyncio server serves a client process; a timed-out or cancelled wait keeps what
the sync call keeps."""

import asyncio
import multiprocessing as mp

import numpy as np
import pytest

import aio_workers
import ndring
import rpc_workers as w

ctx = mp.get_context("spawn")
STALL = aio_workers.STALL
STOP = np.zeros(w.REQUEST[0], np.uint8)


def reap(*procs):
    for p in procs:
        p.join(STALL)
        if p.is_alive():
            p.kill()
            p.join()
            pytest.fail(f"process {p.name} hung")


def started(target, *args):
    p = ctx.Process(target=target, args=args)
    p.start()
    return p


async def get(q):
    """`q.get()` without holding up the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, q.get, True, STALL)


def test_two_asyncio_clients_every_reply_answers_its_own_request(name):
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=3)
    served = ctx.Queue()
    srv = started(w.serve_until_stop, name, served)
    clis = [ndring.Client.open(name) for _ in range(2)]

    async def calls(c, cli):
        bad = 0
        for i in range(100):
            q = w.request(c, i)
            out = await cli.acall(q)
            # The same zero-copy read-only reply `call()` returns.
            assert not out.flags.writeable
            if not np.array_equal(out, w.answer(q)):
                bad += 1
            del out
        return bad

    async def main():
        bad = await asyncio.gather(*(calls(c, cli) for c, cli in enumerate(clis)))
        await clis[0].acall(STOP, meta=b"stop")
        return bad

    assert asyncio.run(asyncio.wait_for(main(), STALL)) == [0, 0]
    reap(srv)
    assert served.get(timeout=5) == 200, "a request answered twice or lost"
    for cli in clis:
        cli.close()
    holder.close()


def test_a_cancelled_acall_is_given_up_and_the_next_gets_its_own_reply(name):
    holder = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=2)
    taken, delivered = ctx.Queue(), ctx.Queue()
    srv = started(w.late_server, name, taken, delivered)
    cli = ndring.Client.open(name)

    async def main():
        call = asyncio.create_task(cli.acall(w.request(0, 0)))
        assert await get(taken)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await get(delivered) is False, "the late reply was delivered"
        for i in range(1, 4):
            q = w.request(0, i)
            assert np.array_equal(await cli.acall(q), w.answer(q))
        await cli.acall(STOP, meta=b"stop")

    asyncio.run(asyncio.wait_for(main(), STALL))
    reap(srv)
    cli.close()
    holder.close()


def test_a_sigkilled_server_fails_every_pending_acall(name):
    ready = ctx.Queue()
    srv = started(aio_workers.create_take_and_hang, name, w.REQUEST, w.REPLY, ready)
    assert ready.get(timeout=STALL)
    cli = ndring.Client.open(name, timeout=STALL)

    async def main():
        calls = [asyncio.create_task(cli.acall(w.request(3, i))) for i in range(3)]
        taken = await get(ready)
        assert taken in range(3)
        srv.kill()
        return await asyncio.gather(*calls, return_exceptions=True)

    got = asyncio.run(asyncio.wait_for(main(), STALL))
    reap(srv)
    for r in got:
        # The request it held fails; the queued ones find no server left.
        assert isinstance(r, (ndring.RequestFailed, ndring.Disconnected)), repr(r)
    cli.close()


def test_an_asyncio_server_serves_a_client_process(name):
    srv = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=2, spin=0)
    errors = ctx.Queue()

    async def main():
        # Timed out, or cancelled: nothing taken, the wait forgotten.
        with pytest.raises(ndring.Timeout):
            await srv.arecv(timeout=0.01)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(srv.arecv(), 0.01)
        assert srv._sleepers()[0] == 0, "a forgotten arecv left a waiter"
        cli = started(w.client_calls, name, 7, 100, errors)
        n = 0
        first = await srv.arecv()
        first.reply(w.answer(first.array))
        del first
        n += 1
        async for req in srv:
            req.reply(w.answer(req.array))
            n += 1
            if n == 100:
                break
        return cli

    cli = asyncio.run(asyncio.wait_for(main(), STALL))
    reap(cli)
    assert errors.get(timeout=5) == (7, 0), "every reply answers its own request"
    assert srv.try_recv() is None, "a request served twice"
    srv.close()


def test_async_for_ends_when_the_server_is_closed(name):
    srv = ndring.Server.create(name, request=w.REQUEST, reply=w.REPLY, clients=1, spin=0)

    async def main():
        async def serve():
            return [req async for req in srv]

        task = asyncio.create_task(serve())
        await asyncio.sleep(0.01)
        srv.close()
        return await task

    assert asyncio.run(asyncio.wait_for(main(), STALL)) == []


def test_a_ticket_awaited_keeps_its_call_on_timeout_and_cancel(name):
    srv = ndring.Server.create(name, request=((2,), np.uint8), reply=((1,), np.uint8), clients=1)
    cli = ndring.Client.open(name, spin=0)
    ticket = cli.send(np.array([3, 4], np.uint8))

    async def main():
        with pytest.raises(ndring.Timeout):
            await ticket.aresult(timeout=0.01)
        assert ticket.pending
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ticket.aresult(), 0.01)
        assert ticket.pending
        waiting = asyncio.create_task(ticket.aresult())
        await asyncio.sleep(0.01)
        with pytest.raises(ndring.Error):
            ticket.result(timeout=0)  # an asyncio task awaits it
        req = srv.recv(timeout=STALL)
        req.reply(np.array([req.array.sum()], np.uint8))
        del req
        out = await waiting
        assert out.tolist() == [7]
        assert not ticket.pending
        with pytest.raises(ndring.Error):
            await ticket.aresult()  # already received

    asyncio.run(asyncio.wait_for(main(), STALL))
    # A request dropped unanswered fails an awaiting caller, as `result()` fails.
    t2 = cli.send(np.array([1, 1], np.uint8))
    del_req = srv.recv(timeout=STALL)
    del del_req

    async def failed():
        with pytest.raises(ndring.RequestFailed):
            await t2.aresult()

    asyncio.run(asyncio.wait_for(failed(), STALL))
    assert not t2.pending
    cli.close()
    srv.close()
