"""Benchmarks of the separable backend (grid: ../shared/bench-grid.md, 'separable' rows).

1024 x 1024 images, mode 'same' (zero fill); Gaussian kernels k in {3, 7, 15, 31} in float32
and float64, random rank-2 kernels k in {15, 31} in float32. Contenders in the same group:
``cv2.sepFilter2D``, ``cv2.filter2D`` (the fast direct 2-D stand-in), ``scipy.ndimage.
convolve1d`` twice, and every convcore backend that supports the problem (naive only where
n^2 k^2 <= 1e9). Every result is checked against a float64 reference.

pytest-benchmark (one group per problem)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/bench_separable.py

Ratios for the issue's targets, interleaved rounds and medians, one process::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_separable.py --rounds 7
"""

import argparse
import time

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import convcore
from conftest import median_time, warm_up

try:
    import cv2
except ImportError:  # pragma: no cover - the bench extra installs it
    cv2 = None

N = 1024
THREADS = 2


def gaussian(k):
    """OpenCV's getGaussianKernel(k, 0) weights."""
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    g = np.exp(-0.5 * ((np.arange(k) - (k - 1) / 2) / sigma) ** 2)
    return g / g.sum()


def make_problem(name, k, dtype):
    """(image, kernel, factors or None) for one cell of the grid."""
    x = np.random.default_rng(0).standard_normal((N, N)).astype(dtype)
    if name == "gaussian":
        g = gaussian(k)
        return x, np.outer(g, g).astype(dtype), (g, g)
    rng = np.random.default_rng(1)
    kernel = sum(np.outer(rng.standard_normal(k), rng.standard_normal(k)) for _ in range(2))
    return x, kernel.astype(dtype), None


def contenders(x, kernel, factors):
    """name -> zero-argument callable, each computing scipy's convolve(x, kernel, 'same')."""
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    calls = {}
    for name in convcore.list_backends():
        problem = convcore._problem.build_problem(x, kernel, "same", "convolve")[2]
        if convcore.get_backend(name).supports(problem) is not True:
            continue
        if name == "naive" and x.size * kernel.size > 1e9:
            continue
        calls[f"convcore-{name}"] = (lambda n=name: convcore.convolve(x, kernel, "same",
                                                                      backend=n))
    if cv2 is not None:
        if factors is not None:
            ky = np.ascontiguousarray(factors[0][::-1], x.dtype)
            kx = np.ascontiguousarray(factors[1][::-1], x.dtype)
            calls["cv2.sepFilter2D"] = lambda: cv2.sepFilter2D(
                x, -1, kx, ky, borderType=cv2.BORDER_CONSTANT)
        calls["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, flipped,
                                                     borderType=cv2.BORDER_CONSTANT)
    if factors is not None:
        calls["ndimage.convolve1d x2"] = lambda: scipy.ndimage.convolve1d(
            scipy.ndimage.convolve1d(x, factors[0].astype(x.dtype), 0, mode="constant"),
            factors[1].astype(x.dtype), 1, mode="constant")
    return calls


def reference(x, kernel):
    return scipy.signal.fftconvolve(x.astype(np.float64), kernel.astype(np.float64), "same")


def check(result, expected, dtype):
    scale = np.abs(expected).max() or 1.0
    tolerance = 2e-4 if np.dtype(dtype) == np.float32 else 1e-9
    error = np.abs(np.asarray(result, np.float64) - expected).max() / scale
    assert error <= tolerance, f"relative error {error:.3g} over {tolerance}"


CELLS = ([("gaussian", k, "float32") for k in (3, 7, 15, 31)]
         + [("gaussian", k, "float64") for k in (3, 7, 15, 31)]
         + [("rank2", k, "float32") for k in (15, 31)])


def _cell_id(cell):
    return f"{cell[0]}-k{cell[1]}-{cell[2]}"


def _all_cases():
    cases = []
    for cell in CELLS:
        x, kernel, factors = make_problem(*cell)
        for name in contenders(x, kernel, factors):
            cases.append(pytest.param(cell, name, id=f"{_cell_id(cell)}-{name}"))
    return cases


@pytest.mark.parametrize("cell,contender", _all_cases())
def test_separable_grid(benchmark, cell, contender, idle_gap):
    x, kernel, factors = make_problem(*cell)
    call = contenders(x, kernel, factors)[contender]
    benchmark.group = _cell_id(cell)
    if cv2 is not None:
        cv2.setNumThreads(THREADS)
    with convcore.threads(THREADS):
        result = benchmark(call)
    check(result, reference(x, kernel), cell[2])


# -- interleaved ratios (python benchmarks/bench_separable.py) --------------------------------

def interleaved(cell, names, rounds, repeats=15, gap=0.25):
    """Median over `rounds` of each contender's median of `repeats` calls, run A B C, A B C,
    with an idle gap before each block so other thread pools fall asleep (PERF-NOTES.md), then
    untimed calls until the contender is back in its steady state (``conftest.warm_up``)."""
    x, kernel, factors = make_problem(*cell)
    calls = contenders(x, kernel, factors)
    expected = reference(x, kernel)
    for name in names:
        check(calls[name](), expected, cell[2])
    samples = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            time.sleep(gap)
            warm_up(calls[name])
            samples[name].append(median_time(calls[name], repeats))
    return {name: float(np.median(v)) for name, v in samples.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if cv2 is None:
        raise SystemExit("needs opencv-python-headless")
    cv2.setNumThreads(THREADS)
    convcore.set_num_threads(THREADS)
    print(f"{N}x{N} 'same', {THREADS} threads, median of {args.rounds} interleaved rounds")
    for cell in CELLS:
        names = ["convcore-separable", "cv2.filter2D"]
        if cell[0] == "gaussian":
            names.insert(1, "cv2.sepFilter2D")
        if "openmp" in convcore.list_backends():
            names.append("convcore-openmp")
        t = interleaved(cell, names, args.rounds)
        line = f"{_cell_id(cell):<20}" + "  ".join(f"{n} {t[n] * 1e3:7.3f} ms" for n in names)
        ratios = [f"{n}/separable {t[n] / t['convcore-separable']:.2f}x" for n in names[1:]]
        print(line + "   " + ", ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
