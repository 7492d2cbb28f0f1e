"""Streams 1080p frames from one Python process to another through an ndring ring, zero copy.

    python python/examples/stream.py [--seconds 3] [--slots 4]

The producer fills each slot in place (``with tx.claim() as frame``) and stamps the frame number
in the slot's metadata; the consumer receives read-only arrays over the same memory, checks each
frame's number and a sample of its pixels, and prints frames/s and publish-to-receive latency.
"""

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

import ndring

SHAPE = (1080, 1920, 3)


def produce(name, seconds):
    with ndring.Producer.open(name, timeout=10) as tx:
        n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            with tx.claim(meta=n.to_bytes(8, "little")) as frame:
                frame[...] = n % 251  # a real source would write its pixels here
            n += 1
        tx.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--slots", type=int, default=4)
    args = p.parse_args()
    name = f"/ndring-py-stream-{os.getpid()}"
    rx = ndring.Consumer.create(name, shape=SHAPE, dtype=np.uint8, slots=args.slots, timestamps=True)
    producer = mp.get_context("spawn").Process(target=produce, args=(name, args.seconds))
    producer.start()
    received, latencies, start = 0, [], None
    while True:
        try:
            frame = rx.recv(timeout=30)
        except ndring.Closed:
            break
        info = ndring.info(frame)
        latencies.append(ndring.now_ns() - info.timestamp_ns)
        n = int.from_bytes(info.meta, "little")
        assert n == received, f"expected frame {received}, got {n}"
        assert frame[0, 0, 0] == frame[-1, -1, -1] == n % 251, f"frame {n} is wrong"
        start = start or time.monotonic()
        received += 1
        del frame  # the slot goes back to the producer here
    elapsed = time.monotonic() - start
    producer.join()
    lat = np.percentile(np.array(latencies) / 1000, [50, 99])
    print(f"ndring python stream: {SHAPE} uint8 frames, {args.slots} slots, ring {name}")
    print(f"frames received   {received} (in order; number and two pixels checked), lost 0")
    print(f"throughput        {received / elapsed:.0f} frames/s, {received * frame_bytes() / elapsed / 1e9:.2f} GB/s")
    print(f"latency (publish to receive)  p50 {lat[0]:.1f} us, p99 {lat[1]:.1f} us")


def frame_bytes():
    return int(np.prod(SHAPE))


if __name__ == "__main__":
    main()
