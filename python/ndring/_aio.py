"""asyncio for ndring handles: the coroutines behind `arecv`, `asend` and `async for`.

No thread per pending call. Each event loop gets one notifier (an eventfd registered with
`loop.add_reader`). A pending call polls its handle's Rust wait (`_poll_recv`, `_poll_send`)
with a waker that this process's one reactor thread (which sleeps on every awaited ring's futex
word) fires without the GIL: it pushes the call's token to the notifier and writes the eventfd.
The loop's reader callback then resolves the asyncio future of each woken token, and the call
polls again. The first poll is a single non-blocking attempt, so the loop is never held up.

Cancellation (`task.cancel()`, `asyncio.wait_for`, Ctrl-C through `asyncio.run`, or a
coroutine closed unfinished) ends the Rust wait (`_forget_poll`): no waiter stays counted in the
ring, and a cancelled receive takes no item (the item stays for the next call).
"""

from __future__ import annotations

import asyncio
import itertools
import weakref

from . import _ndring

__all__ = ["recv", "anext", "send", "call", "result", "serve"]


class _Loop:
    """One event loop's notifier and its pending calls (token -> asyncio future)."""

    __slots__ = ("notifier", "futures", "tokens", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.notifier = _ndring._AsyncNotifier()
        self.futures: dict = {}
        self.tokens = itertools.count(1)
        # The callback refers to this object, not to the loop: the loop stays collectable.
        loop.add_reader(self.notifier.fileno(), self._woken)

    def _woken(self) -> None:
        for token in self.notifier.drain():
            future = self.futures.pop(token, None)
            if future is not None and not future.done():
                future.set_result(None)


# Weak keys: a loop that is gone takes its notifier (and eventfd) with it.
_loops: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Loop]" = weakref.WeakKeyDictionary()


def _for(loop: asyncio.AbstractEventLoop) -> _Loop:
    state = _loops.get(loop)
    if state is None:
        state = _loops[loop] = _Loop(loop)
    return state


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _wait(handle, poll, timeout):
    """Polls `poll(notifier, token)` (None: pending, woken through the notifier) until it gives
    a result; `ndring.Timeout` after `timeout` seconds (None: no limit)."""
    loop = asyncio.get_running_loop()
    state = _for(loop)
    token = next(state.tokens)
    deadline = None if timeout is None else loop.time() + timeout
    try:
        while True:
            got = poll(state.notifier, token)
            if got is not None:
                return got
            if deadline is not None and loop.time() >= deadline:
                from . import Timeout

                raise Timeout("timed out")
            future = loop.create_future()
            # Nothing runs on this thread between the poll and here: a wake-up already fired
            # is still in the notifier's list, and resolves this future on the next callback.
            state.futures[token] = future
            timer = None if deadline is None else loop.call_at(deadline, _expire, future)
            try:
                await future
            finally:
                state.futures.pop(token, None)
                if timer is not None:
                    timer.cancel()
    except BaseException:
        # Cancelled, interrupted, timed out, closed unfinished, or an error: end the wait.
        handle._forget_poll(token)
        raise


def recv(handle, timeout=None):
    """`handle.arecv(timeout)`: the next item (Consumer) or frame (Subscriber)."""
    return _wait(handle, handle._poll_recv, timeout)


async def anext(handle):
    """`async for`: the next item, or StopAsyncIteration once the ring is closed and drained."""
    from . import Closed

    try:
        return await _wait(handle, handle._poll_recv, None)
    except Closed:
        raise StopAsyncIteration from None


def send(handle, image, meta=None, timeout=None):
    """`handle.asend(image, meta, timeout)`: the item's sequence number once published."""

    def poll(notifier, token):
        return handle._poll_send(image, meta, notifier, token)

    return _wait(handle, poll, timeout)


async def call(client, request, timeout=None, meta=None):
    """`client.acall(request, timeout, meta)`: sends, then awaits the reply. However it ends
    unanswered (cancelled, interrupted, timed out, failed), the call is given up: a late reply
    is discarded."""
    ticket = client.send(request, meta)
    try:
        return await _wait(ticket, ticket._poll_reply, timeout)
    finally:
        # Nothing left to give up once the reply was received.
        ticket.cancel()


def result(ticket, timeout=None):
    """`ticket.aresult(timeout)`: the reply; the call is kept on Timeout and cancellation."""
    return _wait(ticket, ticket._poll_reply, timeout)


async def serve(server):
    """`async for req in server`: the next request, or StopAsyncIteration once it is closed."""
    if server._closed:
        raise StopAsyncIteration
    try:
        return await _wait(server, server._poll_recv, None)
    except Exception:
        if server._closed:
            raise StopAsyncIteration from None
        raise
