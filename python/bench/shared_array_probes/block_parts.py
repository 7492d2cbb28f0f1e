"""Where an uncontended `with sa.read()` spends its time, in CPU time (this thread's: a loaded
host's waits left out), each part timed alone. One-off probe behind the README's shared-array
performance notes; run it under two venvs (two ndring wheels) to compare them."""
import os
import statistics
import threading
import time

import numpy as np

import ndring

N = 20_000
sa = ndring.SharedArray.create(f"/ndr-probe-parts-{os.getpid()}", shape=(64, 8), dtype=np.float64)
lock = threading.Lock()
r = sa.read


def call_read(n):  # sa.read() alone: the block object (handed out again where it can be)
    for _ in range(n):
        r()


def with_read(n):
    for _ in range(n):
        with r():
            pass


def enter_exit(n):  # the block's two calls, without the with statement
    for _ in range(n):
        b = r()
        b.__enter__()
        b.__exit__(None, None, None)
        del b


def with_lock(n):
    for _ in range(n):
        with lock:
            pass


def acquire_release(n):  # threading.Lock's two calls, without the with statement
    a, rl = lock.acquire, lock.release
    for _ in range(n):
        a()
        rl()


def loop(n):
    for _ in range(n):
        pass


parts = [call_read, with_read, enter_exit, with_lock, acquire_release, loop]
res = {f.__name__: [] for f in parts}
for _ in range(7):
    for f in parts:
        f(1000)
        c = time.thread_time()
        f(N)
        res[f.__name__].append((time.thread_time() - c) / N * 1e6)
print(
    f"load {os.getloadavg()[0]:.2f}, µs CPU per iteration (median of 7): "
    + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in res.items())
)
sa.close()
