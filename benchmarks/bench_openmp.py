"""signal2d rows of the benchmark grid for the ``openmp`` backend, with every contender.

Run from the repository root (BLAS variables unset, as bench-grid.md asks)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/bench_openmp.py

``CONVCORE_BENCH_FULL=1`` runs the whole signal2d grid (n 256/1024/4096, k 3..63, float32 and
float64, 'same' and 'valid'); the default is a quick profile. Each group is one problem; every
contender's result is checked against a float64 FFT reference. Cells projected to take over
5 s per call are skipped with their projection, never dropped silently. The ratios reported
for the issue come from ``benchmarks/rounds_openmp.py`` (interleaved rounds in one run).
"""

import functools
import os

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import convcore
from conftest import assert_close_to, seeded

FULL = os.environ.get("CONVCORE_BENCH_FULL") == "1"
SIZES = (256, 1024, 4096) if FULL else (256, 1024)
KERNELS = (3, 5, 7, 11, 15, 21, 31, 63) if FULL else (3, 7, 15, 31)
DTYPES = ("float32", "float64") if FULL else ("float32",)
MODES = ("same", "valid") if FULL else ("same",)
THREADS = os.cpu_count() or 1
LIMIT_SECONDS = 5.0


@functools.lru_cache(maxsize=8)
def _problem(n, k, dtype, mode):
    x, w = seeded((n, n), dtype, seed=0), seeded((k, k), dtype, seed=1)
    reference = scipy.signal.fftconvolve(x.astype(np.float64), w.astype(np.float64), mode)
    return x, w, reference


def _cv2(x, w, mode):
    import cv2

    cv2.setNumThreads(THREADS)
    k = w.shape[0]
    out = cv2.filter2D(x, -1, np.ascontiguousarray(w[::-1, ::-1]),
                       borderType=cv2.BORDER_CONSTANT)
    if mode == "valid":
        out = out[k // 2: out.shape[0] - (k - 1 - k // 2), k // 2: out.shape[1] - (k - 1 - k // 2)]
    return out


def _pyfftw(x, w, mode):
    import pyfftw.interfaces.scipy_fft as fftw
    import scipy.fft

    with scipy.fft.set_backend(fftw), scipy.fft.set_workers(THREADS):
        return scipy.signal.fftconvolve(x, w, mode)


def _ndimage(x, w, mode):
    out = scipy.ndimage.convolve(x, w, mode="constant")
    k = w.shape[0]
    if mode == "valid":
        out = out[k // 2: out.shape[0] - (k - 1 - k // 2), k // 2: out.shape[1] - (k - 1 - k // 2)]
    return out


def _fftconvolve(x, w, mode):
    import scipy.fft

    with scipy.fft.set_workers(THREADS):
        return scipy.signal.fftconvolve(x, w, mode)


CONTENDERS = {
    "openmp": (lambda x, w, mode: convcore.convolve(x, w, mode, backend="openmp"), 1.5e-12),
    "naive": (lambda x, w, mode: convcore.convolve(x, w, mode, backend="naive"), 1.0e-9),
    "cv2.filter2D": (_cv2, None),
    "scipy.signal.convolve": (lambda x, w, mode: scipy.signal.convolve(x, w, mode), None),
    "scipy.signal.fftconvolve": (_fftconvolve, None),
    "scipy.ndimage.convolve": (_ndimage, 1.5e-9),
    "pyfftw.scipy_fft": (_pyfftw, None),
}


@pytest.mark.parametrize("contender", list(CONTENDERS))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_signal2d(benchmark, idle_gap, dtype, n, k, mode, contender):
    fn, seconds_per_mac = CONTENDERS[contender]
    if contender == "naive" and n * n * k * k > 1e9:
        pytest.skip(f"naive runs only where n*n*k*k <= 1e9 (grid rule), here {n * n * k * k:.2g}")
    if seconds_per_mac is not None:
        projected = n * n * k * k * seconds_per_mac
        if projected > LIMIT_SECONDS:
            pytest.skip(f"skipped (projected {projected:.0f} s)")
    x, w, reference = _problem(n, k, dtype, mode)
    benchmark.group = f"signal2d {dtype} {mode} n={n} k={k}"
    benchmark.extra_info["gflops"] = 2 * n * n * k * k
    convcore.set_num_threads(THREADS)
    result = benchmark(fn, x, w, mode)
    assert_close_to(result, reference, dtype)


@pytest.mark.parametrize("threads", [1, THREADS])
def test_threads_signal2d_4096_k7(benchmark, idle_gap, threads):
    x, w = seeded((4096, 4096), "float32", seed=0), seeded((7, 7), "float32", seed=1)
    benchmark.group = "threads signal2d float32 same n=4096 k=7"
    with convcore.threads(threads):
        result = benchmark.pedantic(convcore.convolve, (x, w, "same"), {"backend": "openmp"},
                                    rounds=5, iterations=1, warmup_rounds=1)
    corner = scipy.signal.convolve(x[:64, :64].astype(np.float64), w.astype(np.float64), "same")
    assert_close_to(result[:61, :61], corner[:61, :61], "float32")


def test_sgemm_peak(benchmark, idle_gap):
    """The machine's float32 GEMM rate, for the fraction-of-peak column."""
    a = seeded((4096, 4096), "float32")
    benchmark.group = "sgemm peak 4096"
    benchmark.extra_info["gflops"] = 2 * 4096 ** 3
    result = benchmark.pedantic(np.matmul, (a, a), rounds=5, iterations=1, warmup_rounds=1)
    np.testing.assert_allclose(result[0, :8], a[0] @ a[:, :8], rtol=1e-3, atol=1e-2)
