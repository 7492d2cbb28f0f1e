"""``python -m ndring`` (and the ``ndring-py`` console script): the ``ls`` and ``rm`` commands of the
Rust ``ndring`` command, through :func:`ndring.list` and :func:`ndring.remove`, for a machine with
only the Python package installed. Same output: ``ls`` prints the same table, and ``ls --json``
the same JSON, as ``ndring ls``.

    python -m ndring ls [PATTERN ...] [--json]
    python -m ndring rm NAME ... [--force] [--dry-run]
    python -m ndring rm --stale [PATTERN ...] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from fnmatch import fnmatchcase
from typing import Iterable, List, Optional, Sequence

import ndring
from ndring._ndring import _dtype_names
from ndring import RingInfo
from ndring._ndring import _remove_unused

SHM_DIR = "/dev/shm"


def ring_name(arg: str) -> str:
    """``cam0``, ``/cam0`` and ``/dev/shm/cam0`` all name the ring ``/cam0``."""
    if arg.startswith(SHM_DIR):
        arg = arg[len(SHM_DIR):]
    return "/" + arg.lstrip("/")


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` matches one of ``patterns`` (``cam*``, ``/cam*``); none match all."""
    return not patterns or any(fnmatchcase(name, ring_name(p)) for p in patterns)


def element(dtype) -> Optional[str]:
    """The ring format's name of a ring's dtype, as ``ndring ls`` prints it: ``u8``, ``f32``,
    ``bf16``, ``c64``, ``bool``. ``dtype`` is a numpy dtype, or for bfloat16 where ``ml_dtypes``
    is not installed its name (see ``RingInfo.dtype``)."""
    if dtype is None:
        return None
    return _dtype_names()[dtype if isinstance(dtype, str) else dtype.name]


def shape(s) -> str:
    """``1080x1920x3``; ``scalar`` for rank 0."""
    return "x".join(str(d) for d in s) if s else "scalar"


def size(n: int) -> str:
    """Decimal units, as ``df -H``: ``24.9 MB``."""
    units = ["B", "kB", "MB", "GB", "TB"]
    v, u = float(n), 0
    while v >= 1000.0 and u + 1 < len(units):
        v /= 1000.0
        u += 1
    return f"{n} B" if u == 0 else f"{v:.1f} {units[u]}"


def pid(p: Optional[int], alive: bool) -> str:
    if p is None:
        return "?"
    return str(p) if alive else f"{p} (dead)"


def peers_cell(r: RingInfo) -> str:
    """The PEERS column: ``2/2 alive: ndring-bridge, python3``."""
    cell = f"{r.peers_alive}/{r.peers} alive"
    return f"{cell}: {', '.join(r.programs)}" if r.programs else cell


def row(r: RingInfo) -> List[str]:
    if r.state == "unfinished":
        return [r.name, "-", "-", "-", "-", size(r.size), r.state,
                pid(r.creator_pid, r.creator_alive), "-", "-"]
    return [
        r.name, r.kind or "-", element(r.dtype) or "?", shape(r.shape), str(r.slots), size(r.size),
        r.state, pid(r.creator_pid, r.creator_alive), peers_cell(r), str(r.published),
    ]


def table(rows: List[List[str]]) -> None:
    """Left-aligned columns two spaces apart, the last one unpadded."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        cells = [cell.ljust(widths[c]) for c, cell in enumerate(r[:-1])] + [r[-1]]
        print("  ".join(cells).rstrip())


def as_json(r: RingInfo) -> dict:
    """One ring as ``ndring ls --json`` shows it."""
    d = dict(r.__dict__)
    d["dtype"] = element(r.dtype)
    d["shape"] = None if r.shape is None else [int(x) for x in r.shape]
    return d


def ls(patterns: Sequence[str], as_json_: bool) -> int:
    rings = [r for r in ndring.list() if matches_any(r.name, patterns)]
    if as_json_:
        # As serde_json prints it: keys sorted, no spaces.
        print(json.dumps([as_json(r) for r in rings], sort_keys=True, separators=(",", ":")))
        return 0
    if not rings:
        print(f"no rings in {SHM_DIR}")
        return 0
    header = ["NAME", "KIND", "DTYPE", "SHAPE", "SLOTS", "SIZE", "STATE", "CREATOR", "PEERS",
              "PUBLISHED"]
    table([header] + [row(r) for r in rings])
    return 0


def describe(r: RingInfo) -> str:
    """``stale spsc ring of u8 8, 4.5 kB``."""
    if r.state == "unfinished":
        return f"unfinished segment, {size(r.size)}"
    return f"{r.state} {r.kind} ring of {element(r.dtype)} {shape(r.shape)}, {size(r.size)}"


def abandoned(r: RingInfo) -> bool:
    """Nobody left who could use it: what ``rm --stale`` removes."""
    return r.state == "stale" or (r.state == "unfinished" and not r.creator_alive)


def users(r: RingInfo) -> Optional[str]:
    """Who uses the ring, or None if nobody does."""
    if r.state == "unfinished":
        return f"pid {r.creator_pid} (creating it)" if r.creator_alive else None
    if r.peers_alive:
        return f"{r.peers_alive} live process(es)"
    if r.creator_alive:
        return f"pid {r.creator_pid} (its creator)"
    return None


def fail(message: str) -> None:
    print(f"ndring: {message}", file=sys.stderr)


def unlink(name: str, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        ndring.remove(name)
        return True
    except ndring.Error as e:
        fail(f"cannot remove {name}: {e}")
        return False


def rm(names: Sequence[str], stale: bool, force: bool, dry_run: bool) -> int:
    verb = "would remove" if dry_run else "removed"
    failed = 0
    rings = {r.name: r for r in ndring.list()}
    if stale:
        chosen = [r for r in rings.values() if abandoned(r) and matches_any(r.name, names)]
        if not chosen:
            print("no stale rings")
        for r in chosen:
            if unlink(r.name, dry_run):
                print(f"{verb} {r.name} ({describe(r)})")
            else:
                failed += 1
        return 1 if failed else 0
    for arg in names:
        name = ring_name(arg)
        r = rings.get(name)
        if r is None:
            if not os.path.exists(SHM_DIR + name):
                fail(f"{name}: no such ring (nothing named so in {SHM_DIR})")
                failed += 1
                continue
            if not force:
                fail(f"{name} is not a ring this ndring can read; not removed "
                     "(--force removes it anyway)")
                failed += 1
                continue
            what = "not a readable ring"
        else:
            who = users(r)
            if who is not None and not force:
                fail(f"{name}: in use by {who}; not removed (--force removes it anyway)")
                failed += 1
                continue
            what = describe(r)
            if r.state != "unfinished" and not force and not dry_run:
                # The check again, and the unlink, under the ring's lock: a process that
                # attaches meanwhile keeps its name.
                try:
                    outcome, peers = _remove_unused(name)
                except ndring.Error as e:
                    fail(f"cannot remove {name}: {e}")
                    failed += 1
                    continue
                if outcome == "removed":
                    print(f"{verb} {name} ({what})")
                    continue
                failed += 1
                if outcome == "in use":
                    who = ", ".join(f"pid {p} ({role})" for p, role in peers)
                    fail(f"{name}: in use by {who}; not removed (--force removes it anyway)")
                else:
                    fail(f"{name}: replaced by another ring meanwhile; not removed")
                continue
        if unlink(name, dry_run):
            print(f"{verb} {name} ({what})")
        else:
            failed += 1
    return 1 if failed else 0


def parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Operate ndring rings from Python: list them, remove them (the ls and rm "
        "commands of the Rust ndring command).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_ls = sub.add_parser("ls", help="list the rings in /dev/shm, one line each")
    p_ls.add_argument("patterns", nargs="*", metavar="PATTERN",
                      help="only rings whose names match one of these (* and ?, e.g. 'cam*')")
    p_ls.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    p_rm = sub.add_parser("rm", help="remove rings, never one in use unless --force")
    p_rm.add_argument("names", nargs="*", metavar="NAME",
                      help="rings to remove (/cam0, cam0 or /dev/shm/cam0); with --stale, "
                      "patterns that limit which stale rings are removed")
    p_rm.add_argument("--stale", action="store_true",
                      help="remove every stale ring (creator and peers dead) and every unfinished "
                      "one whose creator is dead")
    p_rm.add_argument("-n", "--dry-run", action="store_true",
                      help="say what would be removed, remove nothing")
    p_rm.add_argument("-f", "--force", action="store_true",
                      help="remove even a ring in use by a live process")
    return p


def main(argv: Optional[Iterable[str]] = None) -> int:
    name = os.path.basename(sys.argv[0])
    prog = "python -m ndring" if name in ("__main__.py", "-m", "") else name
    p = parser(prog)
    args = p.parse_args(None if argv is None else list(argv))
    if args.command == "ls":
        return ls(args.patterns, args.json)
    if not args.names and not args.stale:
        p.error("rm needs NAME ... or --stale")
    if args.stale and args.force:
        p.error("--force cannot be used with --stale")
    return rm(args.names, args.stale, args.force, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
