"""pool.map of 10000 row sums on one worker, ndring against shared_memory + numpy (fixed order). One-off probe behind the README's shared-array performance notes."""
import os, sys; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np, ndring, os, time, multiprocessing as mp
from multiprocessing import shared_memory, resource_tracker
import shared_array as B
resource_tracker.ensure_running()
data = np.random.default_rng(0).random((10000, 10000))
sa = ndring.SharedArray.from_array(f"/wtb-m-{os.getpid()}", data)
shm = shared_memory.SharedMemory(create=True, size=data.nbytes); b = np.ndarray(data.shape, buffer=shm.buf); np.copyto(b, data)
ctx = mp.get_context("fork")
def nd_plain(args):
    sa, i = args
    return sa.as_array()[i].sum()
_KEEP = []
def nd_kept(args):
    """As nd_plain, but the worker keeps its first handle (and so its mapping) to the end, as
    the shm variant's cache does: its teardown then falls outside the timed map too."""
    sa, i = args
    if not _KEEP:
        _KEEP.append(sa)
    return _KEEP[0].as_array()[i].sum()
def shm_plain(args):
    name, shape, i = args
    return B.attach(name, shape)[i].sum()
try:
    for r in range(3):
        row = []
        for label, f, h in (("ndring", nd_plain, (sa,)), ("ndring kept", nd_kept, (sa,)), ("shm", shm_plain, (shm.name, data.shape))):
            with ctx.Pool(1) as pool:
                pool.map(abs, [1])
                t = time.perf_counter()
                pool.map(f, [(*h, i) for i in range(10000)])
                row.append(f"{label} map {(time.perf_counter()-t)*1e3:.0f} ms")
        print(f"round {r+1} load {os.getloadavg()[0]:.2f}: " + ", ".join(row), flush=True)
finally:
    del b; shm.close(); shm.unlink(); sa.close()
