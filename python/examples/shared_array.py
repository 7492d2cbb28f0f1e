"""One array every process reads and writes in place: the programs written with
multiprocessing.shared_memory and the shared-memory-array package, with ndring.SharedArray.

    python python/examples/shared_array.py

1. A child process writes into the parent's array in place.
2. A Pool sums the rows of a 1000 x 1000 array, each worker reading it in place.
3. A Pool computes the mean and standard deviation of each tile of an image, under the lock.

The handle travels to the workers as an argument (it pickles to its name; the worker attaches by
name), nothing is copied, and the name is removed when the last handle is closed: no resource
tracker removes it early, and a worker never removes it.
"""

import multiprocessing as mp
import os

import numpy as np

import ndring


def child(sa):
    sa.as_array()[0, 0] = 1  # in place: the parent sees it


def sum_row(args):
    sa, i = args
    return sa.as_array()[i].sum()


def tile_stats(args):
    sa, y0, y1 = args
    with sa.read() as img:  # no writer can change the image while we read it
        return img[y0:y1].mean(), img[y0:y1].std()


def main():
    base = f"/ndring-py-sa-{os.getpid()}"

    # 1. A child writes in place.
    with ndring.SharedArray.create(base + "a", shape=(5, 5), dtype=np.float64) as sa:
        p = mp.Process(target=child, args=(sa,))
        p.start()
        p.join()
        with sa.read() as a:
            print("after the child:", a[0, :3], "version", sa.version)
            assert a[0, 0] == 1

    # 2. A Pool sums rows.
    data = np.random.default_rng(0).random((1000, 1000))
    with ndring.SharedArray.from_array(base + "b", data) as sa, mp.Pool(4) as pool:
        sums = pool.map(sum_row, [(sa, i) for i in range(1000)])
        print(f"total sum: {sum(sums):.3f} (numpy: {data.sum():.3f})")
        assert np.isclose(sum(sums), data.sum())

    # 3. A Pool computes tile statistics.
    image = np.random.default_rng(1).random((2000, 1000))
    h = image.shape[0] // 10
    with ndring.SharedArray.from_array(base + "c", image) as sa, mp.Pool(4) as pool:
        stats = pool.map(tile_stats, [(sa, i * h, (i + 1) * h) for i in range(10)])
        print(f"{len(stats)} tiles, first: mean {stats[0][0]:.4f}, std {stats[0][1]:.4f}")
        assert np.isclose(stats[0][0], image[:h].mean())

    for suffix in "abc":
        assert not os.path.exists("/dev/shm" + base + suffix), "a name was left behind"


if __name__ == "__main__":
    main()
