"""Page faults and time reading every row of a fresh mapping: python faults.py nd|shm. One-off probe behind the README's shared-array performance notes."""
import numpy as np, ndring, os, sys, time, resource
from multiprocessing import shared_memory, resource_tracker
which = sys.argv[1]
n = 10000
if which == "nd":
    sa = ndring.SharedArray.create(f"/wtb-p-{os.getpid()}", shape=(n, n), dtype=np.float64)
    sa.as_array()[:] = 1.0
    o = ndring.SharedArray.open(sa.name)
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter(); a = o.as_array(); s = sum(a[i].sum() for i in range(n)); dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del a; o.close(); sa.close()
else:
    shm = shared_memory.SharedMemory(create=True, size=n*n*8)
    b = np.ndarray((n, n), buffer=shm.buf); b[:] = 1.0; del b
    m = shared_memory.SharedMemory(name=shm.name); resource_tracker.unregister(m._name, "shared_memory")
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter(); a = np.ndarray((n, n), buffer=m.buf); s = sum(a[i].sum() for i in range(n)); dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del a; m.close(); shm.close(); shm.unlink()
print(f"{which}: {dt*1e3:.0f} ms, {r1-r0} minor faults reading the rows", flush=True)
