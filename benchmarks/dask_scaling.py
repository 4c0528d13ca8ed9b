"""Time of convcore.dask against workers and chunk size: the plot in docs/dask.md.

    nice -n 19 python -m benchmarks.dask_scaling docs/dask-scaling.png [rounds]

For 1 and 2 worker processes x 1 thread (LocalCluster), and chunks of 256^2 to 2048^2,
times ``convcore.dask.convolve`` of a persisted 4096^2 float32 array by a 15 x 15
Gaussian, 'same' (median of `rounds` runs), beside the same call in memory in this
process; draws time against chunk size, one line per worker count.
"""

import sys
import time

import numpy as np

from . import grid

SHAPE = (4096, 4096)
CHUNKS = (256, 512, 1024, 2048)
WORKERS = (1, 2)


def measure(rounds=3):
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import convcore
    import convcore.dask

    g = grid.gaussian(15)
    k = np.outer(g, g).astype(np.float32)
    data = grid.seeded(SHAPE, "float32")
    times = {}
    for workers in WORKERS:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as local, Client(local) as client:
            for chunk in CHUNKS:
                rng = da.random.default_rng(0)
                x = client.persist(rng.standard_normal(SHAPE, chunks=chunk, dtype=np.float32))
                wait(x)
                runs = []
                for _ in range(rounds):
                    time.sleep(0.25)
                    start = time.perf_counter()
                    y = client.persist(convcore.dask.convolve(x, k, "same", boundary="symm"))
                    wait(y)
                    runs.append(time.perf_counter() - start)
                    del y
                times[workers, chunk] = float(np.median(runs))
                print(f"{workers} workers, chunks {chunk}^2: {times[workers, chunk]:.3f} s",
                      flush=True)
                client.cancel(x)
    memory = []
    for _ in range(rounds):
        time.sleep(0.25)
        start = time.perf_counter()
        convcore.convolve(data, k, "same", boundary="symm")
        memory.append(time.perf_counter() - start)
    times["memory"] = float(np.median(memory))
    print(f"in memory (this process, {convcore.get_num_threads()} threads): "
          f"{times['memory']:.3f} s")
    return times


def plot(times, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for workers in WORKERS:
        ax.plot(CHUNKS, [times[workers, c] for c in CHUNKS], "o-",
                label=f"convcore.dask, {workers} worker{'s' if workers > 1 else ''} x 1 thread")
    ax.axhline(times["memory"], color="gray", linestyle="--",
               label="convcore.convolve in memory")
    ax.set_xscale("log", base=2)
    ax.set_xticks(CHUNKS, [f"{c}^2" for c in CHUNKS])
    ax.set_xlabel("chunk size")
    ax.set_ylabel("seconds (median)")
    ax.set_ylim(bottom=0)
    ax.set_title("4096^2 float32, 15x15 Gaussian, 'same' (2-core VM, niced, shared)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    plot(measure(int(sys.argv[2]) if len(sys.argv) > 2 else 3), sys.argv[1])
