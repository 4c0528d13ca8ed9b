"""Time of convcore.dask against workers and chunk size: the plot in docs/dask.md.

    nice -n 19 convcore bench dask-scaling docs/dask-scaling.png [--rounds 3]

For 1 and 2 worker processes x 1 thread (LocalCluster), and chunks of 256^2 to 2048^2,
times ``convcore.dask.convolve`` of a persisted 4096^2 float32 array by a 15 x 15
Gaussian, 'same' (median of `rounds` runs), beside the same call in memory in this
process; draws time against chunk size, one line per worker count.
"""

import argparse
import time

import numpy as np

from . import grid, stamp, timing

SIDE = 4096
CHUNKS = (256, 512, 1024, 2048)
WORKERS = (1, 2)


def measure(rounds=3, side=SIDE, chunks=CHUNKS, workers_list=WORKERS):
    """``{(workers, chunk): seconds, "memory": seconds}``, medians of `rounds` runs."""
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import convcore
    import convcore.dask

    shape = (side, side)
    g = grid.gaussian(15)
    k = np.outer(g, g).astype(np.float32)
    data = grid.seeded(shape, "float32")
    times = {}
    for workers in workers_list:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as local, Client(local) as client:
            for chunk in chunks:
                rng = da.random.default_rng(0)
                x = client.persist(rng.standard_normal(shape, chunks=chunk, dtype=np.float32))
                wait(x)
                runs = []
                for _ in range(rounds):
                    timing.idle_gap()
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
        timing.idle_gap()
        start = time.perf_counter()
        convcore.convolve(data, k, "same", boundary="symm")
        memory.append(time.perf_counter() - start)
    times["memory"] = float(np.median(memory))
    print(f"in memory (this process, {convcore.get_num_threads()} threads): "
          f"{times['memory']:.3f} s")
    return times


def plot(times, path, side=SIDE, title_machine="2-core VM, niced, shared"):
    """Draw `times` (from `measure`) as time against chunk size, one line per worker count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workers_list = sorted({key[0] for key in times if key != "memory"})
    chunks = sorted({key[1] for key in times if key != "memory"})
    fig, ax = plt.subplots(figsize=(6, 4))
    for workers in workers_list:
        ax.plot(chunks, [times[workers, c] for c in chunks], "o-",
                label=f"convcore.dask, {workers} worker{'s' if workers > 1 else ''} x 1 thread")
    ax.axhline(times["memory"], color="gray", linestyle="--",
               label="convcore.convolve in memory")
    ax.set_xscale("log", base=2)
    ax.set_xticks(chunks, [f"{c}^2" for c in chunks])
    ax.set_xlabel("chunk size")
    ax.set_ylabel("seconds (median)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"{side}^2 float32, 15x15 Gaussian, 'same' ({title_machine})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None, prog=None):
    """``convcore bench dask-scaling``: measure, then draw the plot to OUTPUT."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the image to write (PNG or SVG by its extension)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", type=int, default=SIDE, help="image side (default 4096)")
    parser.add_argument("--chunks", default=",".join(map(str, CHUNKS)),
                        help="comma-separated chunk sides (default 256,512,1024,2048)")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)),
                        help="comma-separated worker counts (default 1,2)")
    args = parser.parse_args(argv)
    print(stamp.line(), flush=True)
    chunks = tuple(int(c) for c in args.chunks.split(","))
    workers = tuple(int(w) for w in args.workers.split(","))
    plot(measure(args.rounds, args.side, chunks, workers), args.output, args.side)
    print(f"written: {args.output}")
    return 0
