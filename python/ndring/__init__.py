"""ndring: numpy arrays between processes through lock-free rings in named shared memory, zero copy.

A producer fills a slot of a ring in place (``with tx.claim() as frame: ...``) or copies an array in
(``tx.send(image)``); a consumer in another process receives a read-only numpy array over the same
memory (``rx.recv()``). The slot goes back to the ring when that array and every view of it are
gone. Queue rings (``kind="spsc"`` / ``"mpmc"``) deliver each item exactly once, with
backpressure; broadcast rings never make the writer wait and tell slow subscribers how many frames
they missed. See ``help(ndring.Producer)`` and the README.
"""

from __future__ import annotations


import builtins
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Optional, Tuple, Union

import numpy


class Error(Exception):
    """Base class of every ndring error. Errors of bad input also derive from the builtin a
    caller catches (``TypeError``, ``ValueError``, ``FileExistsError``, ...)."""


class NotFound(Error, FileNotFoundError):
    """No ring of that name exists."""


class PermissionDenied(Error, PermissionError):
    """The ring exists but this process may not open it."""


class AlreadyExists(Error, FileExistsError):
    """A ring of that name already exists (with a live creator, or closed but still attached)."""


class Stale(Error, FileExistsError):
    """``create`` found a stale ring of that name: its creator is dead and items are left unread
    (SIGKILL, Ctrl-C while blocked, a producer gone without ``close()``), or it died creating
    it. Create with ``replace_stale=True`` to replace it, or ``ndring.remove(name)`` it."""


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
    """An argument out of range: a bad name, shape, slot count, timeout, metadata size, kind."""


class Poisoned(Error, RuntimeError):
    """A shared array's writer died holding its lock: the array may be half-written. Every
    ``read()`` and ``write()`` raises this until someone checks or rewrites the array and calls
    ``clear_poison()``."""


class RequestFailed(Error, RuntimeError):
    """A request/reply call got no answer: its server dropped the request unanswered, or died
    serving it (another server did not take it over)."""


class InvalidType(Error, TypeError):
    """An argument of the wrong type: a dtype ndring does not hold, something other than a numpy
    array of the ring's dtype where one is expected, a str where a number is."""


from ._ndring import (  # noqa: E402  (the classes above must exist first: Rust raises them)
    ArrayBlock,
    BroadcastWriter,
    Claim,
    Client,
    Consumer,
    Lease,
    Producer,
    Request,
    Server,
    SharedArray,
    Subscriber,
    Ticket,
    _scan,
    now_ns,
    remove,
)


def _open_shared_array(name, shape, dtype):
    """What a pickled :class:`SharedArray` becomes where it is unpickled (a pool worker): a
    handle attached by name, checked to be the same shape and dtype."""
    return SharedArray._from_pickle(name, tuple(shape), dtype)


# numpy collapses the ``.base`` chain of views (a view's base is the first object owning the
# memory), so a received array or view reaches its Lease in one or two steps; wrappers such as
# ``as_strided``'s add a few. Past this many, ``info`` gives up rather than walk on (a chain that
# loops, ``c.base = c``, would never end).
_MAX_BASE_CHAIN = 256
_NOT_RECEIVED = "not an array received from an ndring ring (nor a view of one)"


def info(array) -> Lease:
    """The :class:`Lease` of an array returned by ``recv`` (or of any view of it): its ``seq``,
    ``timestamp_ns`` and ``meta``, read without a second call that could race.

    Raises ``ndring.InvalidType`` (a ``TypeError``) for anything else, including an object whose ``.base`` chain loops
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
        raise InvalidType(_NOT_RECEIVED)
    # Only to say why: walk again, remembering each object (the references keep ids unique).
    seen = {}
    obj = array
    while obj is not None and len(seen) < _MAX_BASE_CHAIN:
        if id(obj) in seen:
            raise InvalidType(f"{_NOT_RECEIVED}: its chain of .base objects loops back on itself")
        seen[id(obj)] = obj
        obj = getattr(obj, "base", None)
    raise InvalidType(f"{_NOT_RECEIVED}: its chain of .base objects is longer than {_MAX_BASE_CHAIN}")


@dataclass(frozen=True)
class RingInfo:
    """One ring of the machine, as ``ndring ls --json`` shows it (see :func:`list`).

    A segment whose creator never finished it (``state == "unfinished"``) has only ``name``,
    ``size``, ``state``, ``creator_pid`` (None if unknown) and ``creator_alive``; the other
    fields are None."""

    name: str
    kind: Optional[str]
    """``"spsc"``, ``"mpmc"``, ``"broadcast"`` or ``"array"`` (a shared array, issue 24)."""
    dtype: Union[numpy.dtype, str, None]
    """The element type, a ``numpy.dtype``; for a bfloat16 ring where ``ml_dtypes`` is not
    installed, the str ``"bfloat16"``."""
    shape: Optional[Tuple[int, ...]]
    slots: Optional[int]
    size: int
    """Bytes of shared memory."""
    state: str
    """``"live"``, ``"closed"`` (closed, someone still attached), ``"stale"`` (creator and every
    peer dead: safe to remove) or ``"unfinished"``."""
    creator_pid: Optional[int]
    creator_alive: bool
    peers: Optional[int]
    """Processes registered (producers, consumers, writer, subscribers), alive or not."""
    peers_alive: Optional[int]
    programs: Optional[builtins.list[str]]
    """The live peers' program names (``/proc/PID/comm``), each once: ``ndring-bridge`` for a
    bridge, ``python3`` for a Python process."""
    published: Optional[int]
    """Items (frames) published so far."""
    closed: Optional[bool]


def _ring_pattern(pattern: str) -> str:
    """``cam*``, ``/cam*`` and ``/dev/shm/cam*`` all mean ``/cam*`` (as ``ndring ls`` takes them)."""
    if pattern.startswith("/dev/shm/"):
        pattern = pattern[len("/dev/shm"):]
    return "/" + pattern.lstrip("/")


# `list` is ndring.list from here on in this module (the builtin is `builtins.list`).
def list(pattern: Optional[str] = None) -> builtins.list[RingInfo]:  # noqa: A001
    """The rings in ``/dev/shm``, sorted by name, as :class:`RingInfo` objects: what ``ndring ls``
    shows. ``pattern`` keeps the names it matches (shell-style ``*``, ``?``, ``[...]``; ``"cam*"``
    and ``"/cam*"`` alike). Other programs' objects are left out, as are ndring segments this
    version cannot read (another format version, a corrupt header)."""
    rings = [RingInfo(**row) for row in _scan()]
    if pattern is not None:
        if not isinstance(pattern, str):
            raise InvalidType(f"pattern must be None or a str such as 'cam*', got {pattern!r}")
        glob = _ring_pattern(pattern)
        rings = [r for r in rings if fnmatchcase(r.name, glob)]
    return rings

__all__ = [
    "AlreadyExists", "ArrayBlock", "BroadcastWriter", "Claim", "Closed", "Consumer", "Disconnected", "Empty",
    "Error", "Full", "InvalidArgument", "InvalidType", "Lagged", "Lease", "Mismatch", "NotFound",
    "PermissionDenied", "Poisoned", "Producer", "Client", "Request", "RequestFailed", "RingInfo", "Server", "Ticket", "SharedArray", "Stale", "Subscriber", "Timeout", "TooManyLeases",
    "info", "list", "now_ns", "remove",
]
