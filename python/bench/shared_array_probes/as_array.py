"""sa.as_array(), np.ndarray over a SharedMemory, an unpickle (open) + close, and a row sum. One-off probe behind the README's shared-array performance notes."""
import numpy as np, ndring, os, time, pickle
from multiprocessing import shared_memory
sa = ndring.SharedArray.create(f"/wtb-a-{os.getpid()}", shape=(10000, 10000), dtype=np.float64)
shm = shared_memory.SharedMemory(create=True, size=8*10**8)
N = 20000
for r in range(3):
    t = time.perf_counter()
    for _ in range(N): sa.as_array()
    t_as = (time.perf_counter() - t) / N * 1e6
    t = time.perf_counter()
    for _ in range(N): np.ndarray((10000, 10000), dtype=np.float64, buffer=shm.buf)
    t_np = (time.perf_counter() - t) / N * 1e6
    p = pickle.dumps(sa)
    t = time.perf_counter()
    for _ in range(200): pickle.loads(p).close()
    t_open = (time.perf_counter() - t) / 200 * 1e6
    a = sa.as_array()
    t = time.perf_counter()
    for i in range(N): a[i % 10000].sum()
    t_sum = (time.perf_counter() - t) / N * 1e6
    del a
    print(f"round {r+1} load {os.getloadavg()[0]:.2f}: sa.as_array() {t_as:.2f} us; np.ndarray(buffer=shm.buf) {t_np:.2f} us; unpickle (open) + close {t_open:.0f} us; a[i].sum() {t_sum:.1f} us", flush=True)
shm.close(); shm.unlink(); sa.close()
