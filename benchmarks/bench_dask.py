"""convcore.dask beside dask-image and map_overlap(scipy.signal.fftconvolve), on one cluster.

    nice -n 19 convcore bench dask [--rounds 5] [PROBLEM ...]

starts a LocalCluster of 2 worker processes x 1 thread and times, for each problem
docs/dask.md quotes, every row on the same persisted input, in interleaved rounds (an idle gap
before each row), and prints medians and ratios (contender time / convcore.dask time,
higher is better for convcore):

- 8192^2 float32 in 2048^2 chunks, 'same', symmetric boundary, k = 7 random and k = 15
  Gaussian: against ``dask_image.ndfilters.convolve`` (target >= 4x); k = 63 random:
  against ``map_overlap`` of ``scipy.signal.fftconvolve`` (target >= 1.5x);
- 384^3 float32 in 128^3 chunks, k = 5^3: against dask-image (target >= 3x);
- beside them the same call in memory (convcore.convolve in this process, its default
  threads): what the distribution costs.

A row's time is ``persist`` of the result on the workers until every block is done (the
input is persisted first and shared by the rows; nothing is gathered to the client); every
row's result is checked against the in-memory answer on sampled blocks.

Under pytest (``python -m pytest benchmarks -k dask``) the same rows run on a small quick
problem (CI runs each body once, timing off).
"""

import argparse
import time

import numpy as np
import pytest

from . import grid, stamp, timing

BOUNDARY = "symm"   # = ndimage's 'reflect' and dask's map_overlap boundary 'reflect'

PROBLEMS = {
    "n8192-k7-random": dict(shape=(8192, 8192), chunks=2048, k=(7, 7), kernel="random",
                            against="dask-image", target=4.0),
    "n8192-k15-gaussian": dict(shape=(8192, 8192), chunks=2048, k=(15, 15), kernel="gaussian",
                               against="dask-image", target=4.0),
    "n8192-k63-random": dict(shape=(8192, 8192), chunks=2048, k=(63, 63), kernel="random",
                             against="map_overlap-fftconvolve", target=1.5),
    "n384^3-k5-random": dict(shape=(384, 384, 384), chunks=128, k=(5, 5, 5), kernel="random",
                             against="dask-image", target=3.0),
}
QUICK = {"quick-n512-k7": dict(shape=(512, 512), chunks=128, k=(7, 7), kernel="random"),
         "quick-n48^3-k5": dict(shape=(48, 48, 48), chunks=16, k=(5, 5, 5), kernel="random")}
ROWS = ("convcore.dask", "dask-image", "map_overlap-fftconvolve", "in-memory")


def kernel(problem):
    shape = problem["k"]
    if problem["kernel"] == "gaussian":
        g = grid.gaussian(shape[0])
        return np.outer(g, g).astype(np.float32)
    return grid.seeded(shape, "float32", seed=1) / np.float32(np.prod(shape))


def persisted_input(client, problem, seed=0):
    import dask.array as da
    from distributed import wait

    rng = da.random.default_rng(seed)
    x = rng.standard_normal(problem["shape"], chunks=problem["chunks"], dtype=np.float32)
    x = client.persist(x)
    wait(x)
    return x


def lazy(row, x, k):
    """The row's result on dask array `x` (not computed)."""
    if row == "convcore.dask":
        import convcore.dask

        return convcore.dask.convolve(x, k, "same", boundary=BOUNDARY)
    if row == "dask-image":
        from dask_image import ndfilters

        return ndfilters.convolve(x, k, mode="reflect")
    if row == "map_overlap-fftconvolve":
        import scipy.signal

        depth = tuple(m // 2 for m in k.shape)
        return x.map_overlap(lambda block: scipy.signal.fftconvolve(block, k, "same"),
                             depth=depth, boundary="reflect", dtype=np.float32)
    raise ValueError(f"row must be one of {ROWS}, got {row!r}")


def timed_row(client, row, x, k, memory_input=None):
    """Seconds for one run of `row`, and a function giving a sample of its result."""
    from distributed import wait

    if row == "in-memory":
        import convcore

        start = time.perf_counter()
        out = convcore.convolve(memory_input, k, "same", boundary=BOUNDARY)
        return time.perf_counter() - start, (lambda index: out[index])
    y = lazy(row, x, k)
    start = time.perf_counter()
    y = client.persist(y)
    wait(y)
    seconds = time.perf_counter() - start
    return seconds, (lambda index: np.asarray(y[index].compute()))


def sample_index(shape):
    """A corner block and an interior one (checked against the in-memory answer)."""
    corner = tuple(slice(0, 24) for _ in shape)
    inner = tuple(slice(n // 2 - 12, n // 2 + 12) for n in shape)
    return corner, inner


def check(sample, reference):
    for index in sample_index(reference.shape):
        got, expected = sample(index), reference[index]
        scale = float(np.abs(expected).max()) or 1.0
        np.testing.assert_allclose(got, expected, rtol=0, atol=3e-5 * scale)


def cluster():
    from distributed import Client, LocalCluster

    local = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=":0")
    return local, Client(local)


def report(rounds=5, names=None, problems=None):
    """Interleaved rounds on one cluster; medians, ratios and the spread of the rounds
    (`problems`: ``PROBLEMS`` by default)."""
    import convcore

    local, client = cluster()
    try:
        for seed, (name, problem) in enumerate((problems or PROBLEMS).items()):
            if names and name not in names:
                continue
            k = kernel(problem)
            x = persisted_input(client, problem, seed)
            memory_input = x.compute()
            reference = convcore.convolve(memory_input, k, "same", boundary=BOUNDARY)
            rows = ["convcore.dask", problem["against"], "in-memory"]
            if problem["against"] != "dask-image" and problem["k"][0] <= 15:
                rows.insert(2, "dask-image")
            times = {row: [] for row in rows}
            for _ in range(rounds):
                for row in rows:
                    timing.idle_gap()  # other rows' thread pools fall asleep (docs/design.md, "Performance notes")
                    seconds, sample = timed_row(client, row, x, k, memory_input)
                    times[row].append(seconds)
                    if len(times[row]) == 1:
                        check(sample, reference)
            medians = {row: float(np.median(t)) for row, t in times.items()}
            mine = medians["convcore.dask"]
            against = medians[problem["against"]]
            per_round = np.array(times[problem["against"]]) / np.array(times["convcore.dask"])
            print(f"{name}: " + ", ".join(f"{row} {medians[row]:.3f} s" for row in rows))
            print(f"  {problem['against']} / convcore.dask = {against / mine:.2f}x "
                  f"(target >= {problem.get('target', 'none')}; rounds {per_round.min():.2f}-"
                  f"{per_round.max():.2f}); in memory / cluster = "
                  f"{medians['in-memory'] / mine:.2f}x", flush=True)
            del x, memory_input, reference
    finally:
        client.close()
        local.close()


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed", reason="the dask extra (in the test extra)")
    local, client = cluster()
    yield client
    client.close()
    local.close()


@pytest.mark.parametrize("name", list(QUICK))
@pytest.mark.parametrize("row", ROWS)
def test_dask_rows(benchmark, dask_client, row, name):
    """Each row on a quick problem, on the cluster, its result checked (CI: once, untimed)."""
    import convcore

    problem = QUICK[name]
    if row == "dask-image":
        pytest.importorskip("dask_image", reason="dask-image (in the test extra)")
    k = kernel(problem)
    x = persisted_input(dask_client, problem)
    memory_input = x.compute()
    benchmark.group = f"dask-{name}"
    benchmark.extra_info.update(row=row, family="dask", profile="quick",
                                kind="backend" if row in ("convcore.dask", "in-memory")
                                else "contender")
    seconds, sample = benchmark.pedantic(
        timed_row, args=(dask_client, row, x, k, memory_input), rounds=1, iterations=1)
    check(sample, convcore.convolve(memory_input, k, "same", boundary=BOUNDARY))



def main(argv=None, prog=None):
    """``convcore bench dask``: convcore.dask against its contenders on a local cluster."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", help="problem names (default: all of "
                        + ", ".join(PROBLEMS) + ")")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="the small problems the suite runs in CI, against dask-image")
    args = parser.parse_args(argv)
    problems = {name: dict(problem, against="dask-image") for name, problem in QUICK.items()} \
        if args.quick else PROBLEMS
    unknown = set(args.problems) - set(problems)
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(problems))
    print(stamp.line(), flush=True)
    report(args.rounds, args.problems or None, problems)
    return 0
