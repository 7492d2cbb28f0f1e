"""Functions run in other processes by test_shared_array.py (importable by spawned children).
Each takes an ndring.SharedArray handle passed as an argument: pickled (spawn, pool.map), it
attaches by name in the worker; inherited (fork), it attaches again by name on first use."""

import numpy as np

import ndring


def set_corner(sa):
    """The first seed's child: writes one element in place, without a lock."""
    sa.as_array()[0, 0] = 1


def sum_row(args):
    """The second seed's worker: one row's sum, read in place."""
    sa, i = args
    return float(sa.as_array()[i].sum())


def tile_stats(args):
    """The third seed's worker: the mean and standard deviation of a tile of rows, under the
    shared lock."""
    sa, y0, y1 = args
    with sa.read() as img:
        return float(img[y0:y1].mean()), float(img[y0:y1].std())


def fill_rows(args):
    """A disjoint writer: fills its rows with its tile number, holding only those rows."""
    sa, tile, rows = args
    with sa.write(rows=slice(tile * rows, (tile + 1) * rows)) as part:
        part[:] = tile
    return tile


def write_rounds(sa, rounds):
    """A writer: round k stores k in the first half of the array, then in the second half (a
    reader outside the lock would see the halves differ)."""
    half = sa.shape[0] // 2
    for k in range(1, rounds + 1):
        with sa.write() as a:
            a[:half] = k
            a[half:] = k


def read_until(sa, last, out):
    """A reader: reads until it sees `last`; puts (reads, torn reads, values went backwards)."""
    reads = torn = backwards = 0
    seen = 0
    while True:
        with sa.read() as a:
            v = int(a.flat[0])
            if not (a == v).all():
                torn += 1
        reads += 1
        if v < seen:
            backwards += 1
        seen = v
        if v == last:
            break
    out.put((reads, torn, backwards))


def wait_then_read(sa, seen, out):
    """Sleeps until the version moves past `seen`; puts (new version, element 0 then)."""
    out.put("ready")
    v = sa.wait_changed(seen, timeout=60)
    with sa.read() as a:
        out.put((v, int(a[0])))


def write_rows_while_held(sa, rows, out):
    """Takes `rows` while the parent holds other rows: puts True if it got them."""
    try:
        with sa.write(rows=rows, timeout=30) as part:
            part[:] = 5
        out.put(True)
    except ndring.Timeout:
        out.put(False)


def try_whole_write(sa, out):
    """Tries the exclusive lock at once: puts whether it was free."""
    try:
        with sa.write(timeout=0):
            out.put(True)
    except ndring.Timeout:
        out.put(False)


def np_sum(sa):
    return float(np.asarray(sa.as_array()).sum())


def open_close_then_report(name, go, out):
    """Attaches to `name` and closes again (its mapping kept), reports, then waits for `go` and
    reports what opening `name` anew gives."""
    with ndring.SharedArray.open(name) as sa:
        total = float(sa.as_array().sum())
    out.put(total)
    go.wait(60)
    try:
        with ndring.SharedArray.open(name) as sa:
            out.put(("opened", float(sa.as_array().sum())))
    except ndring.NotFound:
        out.put(("not found", None))
