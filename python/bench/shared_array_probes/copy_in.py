"""Copying 800 MB in (SharedArray.from_array against SharedMemory + np.copyto), attaching and removing. One-off probe behind the README's shared-array performance notes."""
import numpy as np, ndring, os, time
from multiprocessing import shared_memory
data = np.random.default_rng(0).random((10000, 10000))
for r in range(3):
    t = time.perf_counter(); sa = ndring.SharedArray.from_array(f"/wtb-c-{os.getpid()}", data); t1 = time.perf_counter() - t
    t = time.perf_counter(); a = sa.as_array(); s = a[5000].sum(); t_as = time.perf_counter() - t
    t = time.perf_counter(); sb = ndring.SharedArray.open(f"/wtb-c-{os.getpid()}"); x = sb.as_array()[0].sum(); del x; sb.close(); t_open = time.perf_counter() - t
    del a
    t = time.perf_counter(); sa.close(); t2 = time.perf_counter() - t
    t = time.perf_counter(); shm = shared_memory.SharedMemory(create=True, size=data.nbytes); b = np.ndarray(data.shape, buffer=shm.buf); np.copyto(b, data); t3 = time.perf_counter() - t
    del b
    t = time.perf_counter(); shm.close(); shm.unlink(); t4 = time.perf_counter() - t
    print(f"round {r+1} load {os.getloadavg()[0]:.2f}: ndring from_array {t1*1e3:.0f} ms, open+as_array+row+close {t_open*1e3:.2f} ms, close {t2*1e3:.0f} ms; shm create+copyto {t3*1e3:.0f} ms, close+unlink {t4*1e3:.0f} ms", flush=True)
