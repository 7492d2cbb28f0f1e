"""ndring: numpy arrays between processes through lock-free rings in named shared memory, zero copy.

A producer fills a slot of a ring in place (``with tx.claim() as frame: ...``) or copies an array in
(``tx.send(image)``); a consumer in another process receives a read-only numpy array over the same
memory (``rx.recv()``). The slot goes back to the ring when that array and every view of it are
gone. Queue rings (``kind="spsc"`` / ``"mpmc"``) deliver each item exactly once, with
backpressure; broadcast rings never make the writer wait and tell slow subscribers how many frames
they missed. See ``help(ndring.Producer)`` and the README.
"""

from __future__ import annotations


class Error(Exception):
    """Base class of every ndring error; the message is the Rust library's."""


class NotFound(Error, FileNotFoundError):
    """No ring of that name exists."""


class PermissionDenied(Error, PermissionError):
    """The ring exists but this process may not open it."""


class AlreadyExists(Error, FileExistsError):
    """A ring of that name already exists (with a live creator)."""


class Timeout(Error, TimeoutError):
    """A wait ran past its ``timeout``."""


class Closed(Error):
    """The ring was closed and everything published was received."""


class Disconnected(Error):
    """No peer is attached on the other side and nothing is left to receive."""


class Lagged(Error):
    """Broadcast: the writer overwrote ``missed`` frames this subscriber had not read."""

    def __init__(self, message: str, missed: int = 0) -> None:
        super().__init__(message)
        self.missed = missed


class Full(Error):
    """Non-blocking claim: every slot is taken."""


class Empty(Error):
    """Non-blocking receive: nothing is published."""


class TooManyLeases(Error, BufferError):
    """This handle holds every slot it can (arrays still alive): the next call could never succeed."""


class Mismatch(Error, ValueError):
    """dtype, rank, shape or ring kind differ from what the ring's header records."""


class InvalidArgument(Error, ValueError):
    """A bad name, configuration value or metadata size."""


from ._ndring import (  # noqa: E402  (the classes above must exist first: Rust raises them)
    BroadcastWriter,
    Claim,
    Consumer,
    Lease,
    Producer,
    Subscriber,
    now_ns,
    remove,
)


# numpy collapses the ``.base`` chain of views (a view's base is the first object owning the
# memory), so a received array or view reaches its Lease in one or two steps; wrappers such as
# ``as_strided``'s add a few. Past this many, ``info`` gives up rather than walk on (a chain that
# loops, ``c.base = c``, would never end).
_MAX_BASE_CHAIN = 256
_NOT_RECEIVED = "not an array received from an ndring ring (nor a view of one)"


def info(array) -> Lease:
    """The :class:`Lease` of an array returned by ``recv`` (or of any view of it): its ``seq``,
    ``timestamp_ns`` and ``meta``, read without a second call that could race.

    Raises ``TypeError`` for anything else, including an object whose ``.base`` chain loops
    back on itself or runs past 256 objects."""
    # This runs once per item in stream loops: the two common cases first, with no loop. A
    # received array's base is its Lease; a numpy view's base is the received array (numpy stops
    # collapsing a view's base chain at a base of another type), whose base is the Lease.
    obj = getattr(array, "base", None)
    if isinstance(obj, Lease):
        return obj
    if obj is not None:
        obj = getattr(obj, "base", None)
        if isinstance(obj, Lease):
            return obj
    # Anything else: a walk of at most _MAX_BASE_CHAIN steps.
    obj = array
    steps = 0
    while obj is not None:
        if isinstance(obj, Lease):
            return obj
        steps += 1
        if steps > _MAX_BASE_CHAIN:
            break
        obj = getattr(obj, "base", None)
    else:
        raise TypeError(_NOT_RECEIVED)
    # Only to say why: walk again, remembering each object (the references keep ids unique).
    seen = {}
    obj = array
    while obj is not None and len(seen) < _MAX_BASE_CHAIN:
        if id(obj) in seen:
            raise TypeError(f"{_NOT_RECEIVED}: its chain of .base objects loops back on itself")
        seen[id(obj)] = obj
        obj = getattr(obj, "base", None)
    raise TypeError(f"{_NOT_RECEIVED}: its chain of .base objects is longer than {_MAX_BASE_CHAIN}")


__all__ = [
    "AlreadyExists", "BroadcastWriter", "Claim", "Closed", "Consumer", "Disconnected", "Empty",
    "Error", "Full", "InvalidArgument", "Lagged", "Lease", "Mismatch", "NotFound",
    "PermissionDenied", "Producer", "Subscriber", "Timeout", "TooManyLeases", "info", "now_ns",
    "remove",
]
