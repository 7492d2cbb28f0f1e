"""Where an uncontended 'with sa.read()' spends its time, each part timed alone. One-off probe behind the README's shared-array performance notes."""
import numpy as np, ndring, os, time, threading
from ndring._ndring import _line_round_trip_ns
N = 200_000
sa = ndring.SharedArray.create(f"/wtb-parts-{os.getpid()}", shape=(64, 8), dtype=np.float64)
a = sa.as_array()
lock = threading.Lock()
def t(f):
    s = time.perf_counter()
    for _ in range(N):
        f()
    return (time.perf_counter() - s) / N * 1e6
def with_read():
    with sa.read():
        pass
def with_write():
    with sa.write():
        pass
def with_lock():
    with lock:
        pass
parts = [("with sa.read()", with_read), ("with sa.write()", with_write),
         ("sa.read() (the block object only)", sa.read),
         ("a.view() (one numpy array)", a.view), ("with threading.Lock()", with_lock),
         ("empty call", lambda: None)]
for r in range(3):
    print(f"round {r+1}: load {os.getloadavg()[0]:.2f}, line {_line_round_trip_ns()} ns; " +
          "; ".join(f"{name} {t(f):.3f} us" for name, f in parts), flush=True)
del a
sa.close()
