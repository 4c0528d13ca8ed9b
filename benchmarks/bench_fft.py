"""Benchmarks of the ``fft`` backend against SciPy's FFT convolutions (grid: bench-grid.md).

Two ways to run it:

* ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/bench_fft.py``
  times every cell with pytest-benchmark, one group per problem (set ``CONVCORE_BENCH_FULL=1``
  for the 4096^2 rows and float64 2-D cells).
* ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fft.py`` measures the
  issue's target ratios honestly on a shared 2-core machine: every contender gets its own
  block of calls after an idle gap, in interleaved rounds (A B C, A B C, ...), and the
  report gives medians over rounds, the ratios and the transform sizes chosen. Options:
  ``--measure`` (FFTW_MEASURE plans), ``--one-thread`` (both sides on one core), ``--grid``
  (one interleaved pass over every quick-grid cell instead of the target cells).

Every timed result is checked against a float64 reference first, so a fast wrong answer fails.
"""

import os
import sys
import time

import numpy as np
import pyfftw
import pytest
import scipy.fft
import scipy.signal

import convcore
from convcore._problem import build_problem

try:  # benchmarks/conftest.py when run under pytest; the same helpers when run as a script
    from conftest import assert_close_to, median_time, seeded, warm_up
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(__file__))
    from conftest import assert_close_to, median_time, seeded, warm_up

THREADS = os.cpu_count() or 1
FULL = os.environ.get("CONVCORE_BENCH_FULL") == "1"
SIZES_2D = [256, 1024] + ([4096] if FULL else [])
KERNELS_2D = [3, 5, 7, 11, 15, 21, 31, 63]
DTYPES_2D = ["float32"] + (["float64"] if FULL else [])
KERNELS_1D = [16, 256, 4096, 65536]


def _pyfftw_fftconvolve():
    """scipy.signal.fftconvolve on pyFFTW's scipy_fft interface (a contender of the grid)."""
    import pyfftw.interfaces.scipy_fft as pyfftw_fft

    pyfftw.interfaces.cache.enable()

    def run(x, k, mode):
        with scipy.fft.set_backend(pyfftw_fft), scipy.fft.set_workers(THREADS):
            return scipy.signal.fftconvolve(x, k, mode)
    return run


def _scipy_fft(x, k, mode):
    with scipy.fft.set_workers(THREADS):
        return scipy.signal.fftconvolve(x, k, mode)


def _scipy_oa(x, k, mode):
    with scipy.fft.set_workers(THREADS):
        return scipy.signal.oaconvolve(x, k, mode)


def _scipy_auto(x, k, mode):
    with scipy.fft.set_workers(THREADS):
        return scipy.signal.convolve(x, k, mode, method="auto")


CONTENDERS_2D = {
    "convcore_fft": lambda x, k, mode: convcore.fftconvolve(x, k, mode),
    "scipy_fftconvolve": _scipy_fft,
    "scipy_convolve_auto": _scipy_auto,
    "pyfftw_scipy_fft": _pyfftw_fftconvolve(),
}
CONTENDERS_1D = {
    "convcore_fft": lambda x, k, mode: convcore.oaconvolve(x, k, mode),
    "scipy_oaconvolve": _scipy_oa,
    "scipy_convolve_auto": _scipy_auto,
    "numpy_convolve": lambda x, k, mode: np.convolve(x, k, mode),
}


def _reference(x, k, mode):
    return scipy.signal.fftconvolve(x.astype(np.float64), k.astype(np.float64), mode)


# --- pytest-benchmark ----------------------------------------------------------------------

CELLS_2D = [(n, k, dtype, mode) for n in SIZES_2D for k in KERNELS_2D for dtype in DTYPES_2D
            for mode in ("same", "valid")]


@pytest.mark.parametrize("contender", list(CONTENDERS_2D) + ["naive"])
@pytest.mark.parametrize("n,k,dtype,mode", CELLS_2D, ids=lambda v: str(v))
def test_signal2d(benchmark, idle_gap, contender, n, k, dtype, mode):
    if contender == "naive":
        if n * n * k * k > 1e9:  # the grid's rule for the baseline
            pytest.skip(f"naive skipped: the grid runs it where n^2 k^2 <= 1e9 "
                        f"(projected {n * n * k * k * 1e-9:.1f} s per call)")
        run = lambda x, w, m: convcore.convolve(x, w, m, backend="naive")  # noqa: E731
    else:
        run = CONTENDERS_2D[contender]
    x, w = seeded((n, n), dtype), seeded((k, k), dtype, seed=1)
    benchmark.group = f"signal2d n={n} k={k} {dtype} {mode}"
    result = benchmark(run, x, w, mode)
    assert_close_to(result, _reference(x, w, mode), dtype)


@pytest.mark.parametrize("contender", list(CONTENDERS_1D))
@pytest.mark.parametrize("k", KERNELS_1D)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["same", "valid"])
def test_signal1d(benchmark, idle_gap, contender, k, dtype, mode):
    if contender == "numpy_convolve" and k > 4096:
        pytest.skip("numpy.convolve only where k <= 4096 (grid)")
    x, w = seeded(1_000_000, dtype), seeded(k, dtype, seed=1)
    benchmark.group = f"signal1d n=1e6 k={k} {dtype} {mode}"
    if contender == "numpy_convolve" and k == 4096:  # about 1-3 s per call: three rounds
        result = benchmark.pedantic(CONTENDERS_1D[contender], (x, w, mode), rounds=3)
    else:
        result = benchmark(CONTENDERS_1D[contender], x, w, mode)
    assert_close_to(result, _reference(x, w, mode), dtype)


# --- interleaved ratios (python benchmarks/bench_fft.py) -------------------------------------

def _time_block(run, x, k, mode, calls):
    call = lambda: run(x, k, mode)  # noqa: E731
    warm_up(call)
    return median_time(call, calls)


def interleaved(contenders, x, k, mode, rounds=7, calls=5, gap=0.15):
    """Median over rounds of each contender's median call time, contenders interleaved."""
    reference = _reference(x, k, mode)
    for name, run in contenders.items():
        assert_close_to(run(x, k, mode), reference, x.dtype)  # warm-up and check
    samples = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            time.sleep(gap)  # let the previous library's threads go to sleep
            samples[name].append(_time_block(run, x, k, mode, calls))
    return {name: float(np.median(v)) for name, v in samples.items()}


def _layout(x, k, mode, overlap_add):
    from convcore.backends.fft import layout_for

    p = build_problem(x, k, mode, "convolve", fft_dtypes=True, prefer_overlap_add=overlap_add)[2]
    return layout_for(p)


def main(rounds=7):
    print(f"threads: convcore {convcore.get_num_threads()}, scipy workers {THREADS}; "
          f"plan={convcore.get_options()['plan']}")
    print("signal2d 1024^2 float32 'same' vs scipy.signal.fftconvolve (target >= 1.2x for k >= 15)")
    for size in (15, 31, 63):
        x, k = seeded((1024, 1024), "float32"), seeded((size, size), "float32", seed=1)
        t = interleaved({"fft": CONTENDERS_2D["convcore_fft"], "scipy": _scipy_fft}, x, k,
                        "same", rounds)
        print(f"  k={size:3d}: fft {t['fft'] * 1e3:6.2f} ms  scipy {t['scipy'] * 1e3:6.2f} ms  "
              f"ratio {t['scipy'] / t['fft']:.2f}  {_layout(x, k, 'same', False)}")
    print("signal1d 1e6 float64 'same' vs scipy.signal.oaconvolve "
          "(target >= 1.5x for k >= 256, >= 1.0x at k = 16)")
    for size in KERNELS_1D:
        x, k = seeded(1_000_000, "float64"), seeded(size, "float64", seed=1)
        t = interleaved({"fft": CONTENDERS_1D["convcore_fft"], "scipy": _scipy_oa}, x, k,
                        "same", rounds)
        print(f"  k={size:5d}: fft {t['fft'] * 1e3:6.2f} ms  scipy {t['scipy'] * 1e3:6.2f} ms  "
              f"ratio {t['scipy'] / t['fft']:.2f}  {_layout(x, k, 'same', True)}")


def sweep(rounds=5):
    """Every quick-grid cell against SciPy's FFT convolutions, one interleaved pass each."""
    for n in SIZES_2D:
        for dtype in ("float32", "float64"):
            for mode in ("same", "valid"):
                for size in (15, 21, 31, 63):
                    x, k = seeded((n, n), dtype), seeded((size, size), dtype, seed=1)
                    t = interleaved({"fft": CONTENDERS_2D["convcore_fft"], "scipy": _scipy_fft},
                                    x, k, mode, rounds, calls=3, gap=0.05)
                    print(f"2d n={n} {dtype} {mode} k={size}: fft {t['fft'] * 1e3:.2f} ms, "
                          f"fftconvolve {t['scipy'] * 1e3:.2f} ms, ratio "
                          f"{t['scipy'] / t['fft']:.2f}  {_layout(x, k, mode, False)}")
    for dtype in ("float32", "float64"):
        for mode in ("same", "valid"):
            for size in KERNELS_1D:
                x, k = seeded(1_000_000, dtype), seeded(size, dtype, seed=1)
                t = interleaved({"fft": CONTENDERS_1D["convcore_fft"], "scipy": _scipy_oa},
                                x, k, mode, rounds, calls=3, gap=0.05)
                print(f"1d {dtype} {mode} k={size}: fft {t['fft'] * 1e3:.2f} ms, oaconvolve "
                      f"{t['scipy'] * 1e3:.2f} ms, ratio {t['scipy'] / t['fft']:.2f}  "
                      f"{_layout(x, k, mode, True)}")


if __name__ == "__main__":
    if "--measure" in sys.argv:
        convcore.set_options(plan="measure")
    if "--one-thread" in sys.argv:  # both sides on one core: the algorithms, without contention
        THREADS = 1
        convcore.set_num_threads(1)
    if "--grid" in sys.argv:
        sweep()
    else:
        main()
