"""Type stubs of the ndring package (numpy arrays through shared-memory rings, zero copy).

Element types (``dtype``): ``uint8``, ``uint16``, ``uint32``, ``uint64``, ``int8``, ``int16``,
``int32``, ``int64``, ``float16``, ``float32``, ``float64``, ``bfloat16`` (``ml_dtypes.bfloat16``,
or ``"bfloat16"``, where the ``ml_dtypes`` package is installed), ``complex64``, ``complex128``
and ``bool``, in native byte order. A ``bool`` ring holds a byte, any nonzero byte true: a
reader's array holds numpy's 0/1 bytes (an item a writer stored other bytes in, say Rust's
``Bool8::from_byte(2)``, is received as a read-only copy made 0/1; all others zero copy).
"""

from types import TracebackType
from typing import List, Literal, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
import numpy.typing as npt

Shape = Union[int, Sequence[int]]
DTypeLike = npt.DTypeLike

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

    missed: int
    def __init__(self, message: str, missed: int = 0) -> None: ...

class Full(Error):
    """Non-blocking claim: every slot is taken."""

class Empty(Error):
    """Non-blocking receive: nothing is published."""

class TooManyLeases(Error, BufferError):
    """The handle holds the slots its next call would need (arrays still alive)."""

class Mismatch(Error, ValueError):
    """dtype, rank, shape or ring kind differ from the ring's header."""

class InvalidArgument(Error, ValueError):
    """An argument out of range; the message says the range allowed. Names: ``/`` and 1 to 30
    bytes, no other ``/`` nor NUL. ``shape``: an int or 0 to 8 ints, each >= 1. ``slots``: 2 to
    65536 (broadcast: at least ``max_subscribers + 2``). ``max_subscribers``: 1 to 1023.
    ``meta_size``: 0 to 4096 (``meta`` at most that many bytes). ``timeout``: None or >= 0 s.
    ``kind``: "spsc" or "mpmc". ``start``: "newest" or "oldest"."""

class Poisoned(Error, RuntimeError):
    """A shared array's writer died holding its lock (SIGKILL inside ``write()``): the array may
    be half-written. Every ``read()`` and ``write()`` raises this, in every process, until
    someone checks or rewrites it and calls ``clear_poison()``."""

class RequestFailed(Error, RuntimeError):
    """A request/reply call got no answer: its server dropped the request unanswered or died
    serving it (another server did not take it over)."""

class InvalidType(Error, TypeError):
    """An argument of the wrong type: a dtype ndring does not hold (the message lists those it
    does; ``bfloat16`` where ``ml_dtypes`` is not installed names the package, also on open),
    something other than a numpy array of the ring's dtype where one is expected, a str where a
    number is."""

class Lease:
    """Base object of an array returned by ``recv``: owns its slot (or copy).

    Across ``fork``, a child's copy of a received array is a private snapshot of the item: it
    never shows a later item after the parent releases the slot.
    Immutable, and made only by ``recv``.
    """

    @property
    def seq(self) -> int:
        """The item's sequence number (1-based position in the stream)."""
    @property
    def timestamp_ns(self) -> Optional[int]:
        """CLOCK_MONOTONIC ns at publish, on rings created with ``timestamps=True``."""
    @property
    def meta(self) -> bytes:
        """The user metadata bytes published with the item."""

class Claim:
    """A claimed slot: ``with tx.claim() as frame:``; published at exit, abandoned on error.

    A view of ``frame`` kept past the block makes the exit raise ``BufferError``; ``frame``
    itself is emptied (first dimension 0; a 0-d ``frame`` becomes shape ``(0,)``), whatever
    shape or dtype the block gave it, and made read-only at publish.
    """

    meta: Optional[bytes]
    """User metadata bytes to publish with the slot."""
    @property
    def seq(self) -> Optional[int]:
        """The sequence number once published; None before or if abandoned."""
    def __enter__(self) -> np.ndarray:
        """The writable array over the slot."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Publishes (or abandons on exception); BufferError if views survive."""

class _Handle:
    """What every handle has. ``spin`` (on create/open): polls before a wait sleeps (default 200)."""

    @property
    def name(self) -> str:
        """The ring's name."""
    @property
    def shape(self) -> Tuple[int, ...]:
        """The shape of each slot's array."""
    @property
    def dtype(self) -> np.dtype:
        """The element type (``ml_dtypes.bfloat16``'s dtype for a bfloat16 ring)."""
    @property
    def slots(self) -> int:
        """Number of slots."""
    @property
    def kind(self) -> Literal["spsc", "mpmc", "broadcast"]:
        """The ring's kind."""
    def detach(self) -> None:
        """Detaches from the ring; further calls raise ndring.Error."""
    def __enter__(self: "_H") -> "_H":
        """The handle itself."""
    def __exit__(self, *args: object) -> bool:
        """Detaches."""


_H = TypeVar("_H", bound=_Handle)

class Producer(_Handle):
    """Fills and publishes the slots of a queue ring (SPSC or MPMC)."""

    @staticmethod
    def create(
        name: str,
        shape: Shape,
        dtype: DTypeLike,
        slots: int = 4,
        kind: Literal["spsc", "mpmc"] = "spsc",
        meta_size: Optional[int] = None,
        timestamps: bool = False,
        keep: bool = False,
        spin: Optional[int] = None,
        replace_stale: bool = False,
    ) -> "Producer":
        """Creates the ring ``name`` and attaches as its producer (``slots``: 2 to 65536;
        ``dtype``: one of the element types above).

        ``ndring.Stale`` if a ring of that name was left by a dead creator, unless
        ``replace_stale=True`` (then it is replaced); ``ndring.AlreadyExists`` if its creator
        lives."""
    @staticmethod
    def open(name: str, timeout: Optional[float] = None, spin: Optional[int] = None) -> "Producer":
        """Attaches to an existing ring, waiting up to ``timeout`` s for it to be created."""
    @staticmethod
    def open_or_create(
        name: str,
        shape: Shape,
        dtype: DTypeLike,
        slots: int = 4,
        kind: Literal["spsc", "mpmc"] = "spsc",
        meta_size: Optional[int] = None,
        timestamps: bool = False,
        spin: Optional[int] = None,
        replace_stale: bool = False,
    ) -> "Producer":
        """Opens ``name`` if it exists (checking dtype and shape; a stale ring is adopted), else
        creates it (``replace_stale=True``: replacing one its creator died creating)."""
    def claim(self, timeout: Optional[float] = None, meta: Optional[bytes] = None) -> Claim:
        """Claims a free slot, waiting while the ring is full."""
    def send(self, image: np.ndarray, meta: Optional[bytes] = None, timeout: Optional[float] = None) -> int:
        """Copies ``image`` (any strides) into a slot, its bytes as they are, and publishes it;
        returns its seq.

        ``ndring.InvalidType`` for anything but a numpy array of the ring's dtype,
        ``ndring.Mismatch`` for one of another shape."""
    async def asend(self, image: np.ndarray, meta: Optional[bytes] = None, timeout: Optional[float] = None) -> int:
        """``send()`` for asyncio: awaits a free slot without blocking the event loop and without
        a thread per pending call (the process's one reactor thread wakes the loop). Cancelled
        (or Ctrl-C), it sends nothing and leaves no waiter counted; one pending async call per
        handle (a second, or a blocking call meanwhile, raises ``RuntimeError``)."""
    def reuse_recent_slots(self, on: bool) -> None:
        """SPSC: fill the slot released last (True; default for items >= 64 KiB) or slots in turn (False)."""
    def close(self) -> None:
        """Closes the ring: consumers drain, then get ndring.Closed."""

class Consumer(_Handle):
    """Receives the slots of a queue ring, each exactly once, as read-only arrays."""

    @staticmethod
    def open(name: str, timeout: Optional[float] = None, spin: Optional[int] = None) -> "Consumer":
        """Attaches to an existing ring, waiting up to ``timeout`` s for it to be created."""
    @staticmethod
    def create(
        name: str,
        shape: Shape,
        dtype: DTypeLike,
        slots: int = 4,
        kind: Literal["spsc", "mpmc"] = "spsc",
        meta_size: Optional[int] = None,
        timestamps: bool = False,
        keep: bool = False,
        spin: Optional[int] = None,
        replace_stale: bool = False,
    ) -> "Consumer":
        """Creates the ring ``name`` and attaches as its consumer (as ``Producer.create``)."""
    @staticmethod
    def open_or_create(
        name: str,
        shape: Shape,
        dtype: DTypeLike,
        slots: int = 4,
        kind: Literal["spsc", "mpmc"] = "spsc",
        meta_size: Optional[int] = None,
        timestamps: bool = False,
        spin: Optional[int] = None,
        replace_stale: bool = False,
    ) -> "Consumer":
        """Opens ``name`` if it exists (checking dtype and shape; a stale ring is adopted), else
        creates it (``replace_stale=True``: replacing one its creator died creating)."""
    def recv(self, timeout: Optional[float] = None) -> np.ndarray:
        """The next item, a read-only array over its slot (zero copy; a ``bool`` item holding a
        byte other than 0 or 1: a read-only copy made 0/1, its slot released at once).

        A child forked while it lives gets a private snapshot of it (see :class:`Lease`)."""
    def __iter__(self) -> "Consumer":
        """``for a in rx:`` receives each item (as ``recv()``) until the ring is closed and drained."""
    def __next__(self) -> np.ndarray:
        """The next item, as ``recv()``; ``StopIteration`` once closed and drained."""
    async def arecv(self, timeout: Optional[float] = None) -> np.ndarray:
        """``recv()`` for asyncio (the same zero-copy array): awaits the next item without
        blocking the event loop and without a thread per pending call (the process's one
        reactor thread wakes the loop). Cancelled (or Ctrl-C), it takes no item (the next call
        gets it) and leaves no waiter counted; ``ndring.Timeout`` after ``timeout`` s. One
        pending async call per handle (a second, or a blocking call meanwhile, raises
        ``RuntimeError``); ``detach()`` wakes it with ``ndring.Error``."""
    def __aiter__(self) -> "Consumer":
        """``async for a in rx:`` receives each item (as ``arecv()``) until closed and drained."""
    async def __anext__(self) -> np.ndarray:
        """The next item, as ``arecv()``; ``StopAsyncIteration`` once closed and drained."""
    def recv_into(self, out: np.ndarray, timeout: Optional[float] = None) -> int:
        """Copies the next item into ``out`` (``bool``: made 0/1); returns its seq."""
    def recv_copy(self, timeout: Optional[float] = None) -> np.ndarray:
        """The next item, copied into a new array (``bool``: made 0/1)."""
    @property
    def held(self) -> int:
        """Slots held by arrays still alive."""
    def close(self) -> None:
        """Detaches from the ring."""

class BroadcastWriter(_Handle):
    """The one writer of a broadcast ring: never waits."""

    @staticmethod
    def create(
        name: str,
        shape: Shape,
        dtype: DTypeLike,
        slots: int = 8,
        max_subscribers: Optional[int] = None,
        meta_size: Optional[int] = None,
        timestamps: bool = False,
        keep: bool = False,
        replace_stale: bool = False,
    ) -> "BroadcastWriter":
        """Creates the broadcast ring ``name``: ``slots`` 2 to 65536 and >= max_subscribers + 2;
        ``max_subscribers`` 1 to 1023 (default ``slots - 2``). ``ndring.Stale`` and
        ``replace_stale`` as for ``Producer.create``."""
    @staticmethod
    def open(name: str, timeout: Optional[float] = None) -> "BroadcastWriter":
        """Takes over the writer role of an existing broadcast ring."""
    def send(self, image: np.ndarray, meta: Optional[bytes] = None) -> int:
        """Copies ``image`` into the next slot and publishes it; returns its seq."""
    @property
    def published(self) -> int:
        """Frames published so far."""
    def skip(self, frames: int) -> int:
        """Publishes the sequence numbers of ``frames`` frames lost upstream (a relay that knows
        frames of its source are missing): subscribers that wanted them get ``ndring.Lagged``
        exactly there, also just before ``ndring.Closed``. Returns the last of them."""
    def close(self) -> None:
        """Closes the ring: subscribers then get ndring.Closed."""

class Subscriber(_Handle):
    """Follows a broadcast ring; frames are copied out."""

    @staticmethod
    def open(
        name: str,
        start: Literal["newest", "oldest"] = "newest",
        timeout: Optional[float] = None,
        spin: Optional[int] = None,
    ) -> "Subscriber":
        """Attaches to the broadcast ring ``name``."""
    def recv(self, timeout: Optional[float] = None) -> np.ndarray:
        """The next frame (a copy; ``bool``: made 0/1); raises ndring.Lagged after overwritten
        frames."""
    def __iter__(self) -> "Subscriber":
        """``for f in sub:`` receives each frame (as ``recv()``) until the writer closes the ring."""
    def __next__(self) -> np.ndarray:
        """The next frame, as ``recv()``; ``StopIteration`` once closed."""
    async def arecv(self, timeout: Optional[float] = None) -> np.ndarray:
        """``recv()`` for asyncio: awaits the next frame without blocking the event loop and
        without a thread per pending call. Cancelled, it skips no frame and leaves no waiter
        counted (as ``Consumer.arecv``)."""
    def __aiter__(self) -> "Subscriber":
        """``async for f in sub:`` receives each frame (as ``arecv()``) until the ring is closed."""
    async def __anext__(self) -> np.ndarray:
        """The next frame, as ``arecv()``; ``StopAsyncIteration`` once closed."""
    def latest(self, timeout: Optional[float] = None) -> np.ndarray:
        """The newest frame, skipping older ones."""
    @property
    def missed_total(self) -> int:
        """Frames lost to lag so far."""
    def close(self) -> None:
        """Detaches from the ring."""

class ArrayBlock:
    """A lock for a ``with`` block, from ``SharedArray.read()`` or ``write()``: taken at
    ``__enter__`` (waiting at most the ``timeout`` given, ``ndring.Timeout``), released at
    ``__exit__`` (a write moves the version, also when the block raised).

    The block's array cannot reach the shared memory after the block: the ``with`` target is
    emptied (first dimension 0) and made read-only; a view kept past the block (a slice, a
    memoryview, a second name) makes the exit raise ``BufferError``, and the lock stays held
    until every such view is gone. A child forked inside the block gets a private copy of the
    array's memory (the parent holds the lock, not the child); leaving a ``write()`` block there
    raises ``ndring.Error``.

    ``read()`` and ``write()`` may hand out again a block that has finished (or was never
    entered) once nothing else refers to it, and a new block's array may be an earlier block's
    with target once nothing refers to that any more: an uncontended block allocates nothing.
    A block object or target the caller still holds is never handed out again."""

    def __enter__(self) -> np.ndarray:
        """The array under the lock: read-only for ``read()``, writable for ``write()``."""
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        """Releases the lock; BufferError if views survive (the lock is kept until they go)."""

_S = TypeVar("_S", bound="SharedArray")

class SharedArray:
    """One array in named shared memory that every attached process reads and writes in place.

    ``as_array()`` gives the memory without a lock (as ``multiprocessing.shared_memory``);
    ``with sa.read() as a:`` (shared) and ``with sa.write() as a:`` (exclusive; ``rows=`` for
    writers of disjoint rows) give it under a reader-writer lock that crosses processes and that
    no stream of readers can starve a writer of. Every write moves ``version``;
    ``wait_changed`` sleeps until the next one.

    A handle pickles to its name: passed to a ``multiprocessing.Pool`` worker (``pool.map(work,
    [(sa, i) for i in range(n)])``) or a spawned ``Process``, it attaches by name there; in a
    forked child it attaches again by name on first use. No resource tracker: a process that
    attached never removes the name; the last handle out (in any process) does, unless
    ``keep``. A process that dies holding a read lock loses it to the next process that waits
    for the lock about a grace period (0.5 s); one that dies inside ``write()`` loses it too,
    and the array is poisoned (``ndring.Poisoned``) until ``clear_poison()``.

    A process keeps the mapping of an array it opened after the handle closes (up to 8
    arrays), so that a pool worker, which attaches anew for every chunk of tasks, maps the
    array and faults its pages in once: the next ``open`` of the name registers over the kept
    mapping once the name is confirmed to still be that array. Only the mapping is kept, never
    the registration: the name's life is unchanged. ``release_mappings()`` drops them.
    """

    @staticmethod
    def create(
        name: str,
        shape: Shape,
        dtype: DTypeLike = np.float64,
        keep: bool = False,
        spin: Optional[int] = None,
    ) -> "SharedArray":
        """Creates the shared array ``name``, zero-filled (``ndring.AlreadyExists`` if it is in
        use; one whose processes all died is replaced), and attaches to it."""
    @staticmethod
    def from_array(
        name: str, data: npt.ArrayLike, keep: bool = False, spin: Optional[int] = None
    ) -> "SharedArray":
        """Creates the shared array ``name`` holding a copy of ``data`` (any numpy array, any
        strides: its shape and dtype); its version is then 1."""
    @staticmethod
    def open(
        name: str,
        timeout: Optional[float] = None,
        shape: Optional[Shape] = None,
        dtype: Optional[DTypeLike] = None,
    ) -> "SharedArray":
        """Attaches to the shared array ``name`` (shape and dtype from its header; checked
        against ``shape`` and ``dtype`` where given, ``ndring.Mismatch``). ``timeout``: seconds
        to wait for it to be created (None: ``ndring.NotFound`` at once)."""
    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def owner(self) -> bool:
        """Whether this handle created the array."""
    @property
    def version(self) -> int:
        """How many writes have ended (whole-array and row writes)."""
    @property
    def poisoned(self) -> bool:
        """Whether a writer died holding the lock since the last ``clear_poison()``."""
    keep: bool
    """Write-only: whether the name stays when the last handle detaches (every process)."""
    def as_array(self) -> np.ndarray:
        """A writable array over the shared memory, without a lock. Its base keeps this process
        attached: it never dangles, also after ``close()``."""
    def read(self, timeout: Optional[float] = None) -> ArrayBlock:
        """``with sa.read() as a:``: a read-only array under the shared lock."""
    def write(
        self, rows: Optional[slice] = None, timeout: Optional[float] = None
    ) -> ArrayBlock:
        """``with sa.write() as a:``: a writable array under the exclusive lock; with
        ``rows=slice(i, j)`` (step 1), those rows only, beside writers of other rows (locked by
        stripes of the first axis, at most 64: ranges sharing a stripe take turns)."""
    def wait_changed(self, version: int, timeout: Optional[float] = None) -> int:
        """Sleeps until the version differs from ``version``; returns the new one."""
    def clear_poison(self) -> None:
        """Declares the array consistent again after a writer died in ``write()``."""
    def close(self) -> None:
        """Detaches this handle (arrays from ``as_array()`` stay valid and keep the process
        attached until they are gone)."""
    @staticmethod
    def release_mappings() -> int:
        """Unmaps the arrays this process opened and has closed every handle of (kept so that
        opening one again maps nothing); returns how many. Each is also dropped once its name
        is removed and this process notices (a close of a handle of that name, its next open of
        that name or of a new array), and at exit."""
    def __enter__(self: _S) -> _S: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

Spec = Tuple[Shape, DTypeLike]

class Server:
    """Serves the requests of a request/reply segment: each request to exactly one server, each
    reply only to the call that asked.

    ``for req in srv: req.reply(detect(req.array))``"""

    @staticmethod
    def create(
        name: str,
        request: Spec,
        reply: Spec,
        clients: int = 8,
        slots: Optional[int] = None,
        meta_size: Optional[int] = None,
        replace_stale: bool = False,
        spin: Optional[int] = None,
    ) -> "Server":
        """Creates the segment ``name`` for requests ``(shape, dtype)`` and replies ``(shape,
        dtype)``, up to ``clients`` clients with two calls in flight each (``slots``: calls in
        all), and serves it."""
    @staticmethod
    def open(name: str, timeout: Optional[float] = None, spin: Optional[int] = None) -> "Server":
        """Serves an existing segment too (several servers share its requests; a restarted
        server takes over); waits up to ``timeout`` s for it to be created."""
    @property
    def name(self) -> str: ...
    @property
    def request(self) -> Tuple[Tuple[int, ...], np.dtype]: ...
    @property
    def reply(self) -> Tuple[Tuple[int, ...], np.dtype]: ...
    def recv(self, timeout: Optional[float] = None) -> "Request":
        """The next request (``ndring.Timeout`` after ``timeout`` s)."""
    def try_recv(self) -> Optional["Request"]:
        """A request queued now, or None."""
    def __iter__(self) -> "Server": ...
    def __next__(self) -> "Request": ...
    async def arecv(self, timeout: Optional[float] = None) -> "Request":
        """``recv`` for asyncio, the loop free while it waits; cancelled (or timed out), it
        takes no request. One pending ``arecv`` per server."""
    def __aiter__(self) -> "Server": ...
    async def __anext__(self) -> "Request":
        """``async for req in srv``: the requests, until the server is closed."""
    def close(self) -> None:
        """Stops serving; callers get ``ndring.Disconnected`` once no server is left. A task
        awaiting ``arecv`` is woken (``async for`` ends)."""
    def __enter__(self) -> "Server": ...
    def __exit__(self, *args: object) -> bool: ...

class Request:
    """A request taken by a server. ``array`` is valid until the request is answered; a request
    whose objects are all gone unanswered fails its caller (``ndring.RequestFailed``)."""

    @property
    def array(self) -> np.ndarray:
        """The request, read-only, over the slot (``ndring.Error`` once answered)."""
    @property
    def client(self) -> int:
        """The asking client's process id."""
    @property
    def meta(self) -> bytes:
        """The metadata the client sent with the request."""
    def reply(self, reply: npt.ArrayLike) -> bool:
        """Copies ``reply`` (the reply's shape; same-kind dtypes cast) in and answers. False if
        the caller had given up (the reply is discarded). ``BufferError``, nothing sent, while a
        view of ``array`` (or a name bound to it) is alive; ``ndring.Error`` while a
        ``reply_array()`` block is open or a view of its array outlived it."""
    def reply_array(self) -> "ReplyBlock":
        """``with req.reply_array() as out:`` fill the reply in place (it holds whatever the slot
        last held: write it whole); sent when the block ends without an exception. A view of
        ``out`` surviving the block raises ``BufferError``: nothing is sent, and the request
        fails to its caller once the view and the request are gone."""

class ReplyBlock:
    def __enter__(self) -> np.ndarray: ...
    def __exit__(self, *args: object) -> bool: ...

class Client:
    """Calls the server(s) of a request/reply segment."""

    @staticmethod
    def open(name: str, timeout: Optional[float] = None, spin: Optional[int] = None) -> "Client":
        """Attaches to ``name``, waiting up to ``timeout`` s for it to be created."""
    @property
    def name(self) -> str: ...
    @property
    def request(self) -> Tuple[Tuple[int, ...], np.dtype]: ...
    @property
    def reply(self) -> Tuple[Tuple[int, ...], np.dtype]: ...
    def call(self, request: np.ndarray, timeout: Optional[float] = None, meta: Optional[bytes] = None) -> np.ndarray:
        """Sends ``request`` (copied in) and returns its reply: a read-only array over the call's
        slot, freed when it and its views are gone. On ``ndring.Timeout`` the call is given up
        (a late reply is discarded); ``ndring.RequestFailed``; ``ndring.Disconnected``."""
    async def acall(
        self, request: np.ndarray, timeout: Optional[float] = None, meta: Optional[bytes] = None
    ) -> np.ndarray:
        """``call`` for asyncio: the same reply and errors, the loop free while it waits for the
        reply. Cancelled, timed out or interrupted, the call is given up (a late reply is
        discarded). Waits for a free call as ``call`` does (only while every call is in
        flight)."""
    def send(self, request: np.ndarray, meta: Optional[bytes] = None) -> "Ticket":
        """Sends ``request`` without waiting (several calls in flight)."""
    def close(self) -> None: ...
    def __enter__(self) -> "Client": ...
    def __exit__(self, *args: object) -> bool: ...

class Ticket:
    """A call in flight. Dropped (or ``cancel()``) unanswered, the call is given up."""

    def result(self, timeout: Optional[float] = None) -> np.ndarray:
        """The reply, as ``Client.call`` returns it; on ``ndring.Timeout`` the call is kept."""
    async def aresult(self, timeout: Optional[float] = None) -> np.ndarray:
        """``result`` for asyncio; on ``ndring.Timeout`` or when the awaiting task is
        cancelled, the call is kept (await again, or ``cancel()``). One awaiting task at a
        time (``result`` meanwhile raises ``ndring.Error``)."""
    @property
    def pending(self) -> bool: ...
    def cancel(self) -> None:
        """Gives the call up (a late reply is discarded); a task awaiting ``aresult`` raises."""

def info(array: np.ndarray) -> Lease:
    """The Lease (seq, timestamp_ns, meta) of an array from ``recv`` or of a view of it.

    ``ndring.InvalidType`` (a TypeError) for anything else (also when its ``.base`` chain loops
    or passes 256 objects)."""

def remove(name: str) -> None:
    """Removes the ring ``name`` from /dev/shm, in use or not (attached processes keep their
    mapping); ``ndring.NotFound`` (a FileNotFoundError) if there is none."""

class RingInfo:
    """One ring of the machine, as ``ndring ls --json`` shows it. A segment whose creator never
    finished it (``state == "unfinished"``) has only ``name``, ``size``, ``state``,
    ``creator_pid`` and ``creator_alive``; the other fields are None."""

    name: str
    kind: Optional[Literal["spsc", "mpmc", "broadcast", "array"]]
    dtype: Union[np.dtype, str, None]
    """The element type; for a bfloat16 ring where ``ml_dtypes`` is not installed, the str
    ``"bfloat16"``."""
    shape: Optional[Tuple[int, ...]]
    slots: Optional[int]
    size: int
    """Bytes of shared memory."""
    state: Literal["live", "closed", "stale", "unfinished"]
    """``stale``: creator and every peer dead (safe to remove)."""
    creator_pid: Optional[int]
    creator_alive: bool
    peers: Optional[int]
    peers_alive: Optional[int]
    programs: Optional[List[str]]
    """The live peers' program names (``/proc/PID/comm``), each once (``ndring-bridge``,
    ``python3``)."""
    published: Optional[int]
    closed: Optional[bool]
    def __init__(
        self,
        name: str,
        kind: Optional[str],
        dtype: Union[np.dtype, str, None],
        shape: Optional[Tuple[int, ...]],
        slots: Optional[int],
        size: int,
        state: str,
        creator_pid: Optional[int],
        creator_alive: bool,
        peers: Optional[int],
        peers_alive: Optional[int],
        programs: Optional[List[str]],
        published: Optional[int],
        closed: Optional[bool],
    ) -> None: ...

def list(pattern: Optional[str] = None) -> List[RingInfo]:
    """The rings in /dev/shm, sorted by name (``pattern``: shell-style, ``"cam*"`` or ``"/cam*"``)."""

def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds."""
