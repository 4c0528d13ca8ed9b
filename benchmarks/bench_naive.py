"""naive against SciPy's own direct method: the baseline's baseline.

The Foundation issue asks that the textbook loop, compiled, is at least as fast as
``scipy.signal.convolve(method="direct")``; this measures both on the signal2d grid's
1024^2 image with k = 3..15 and reports GMAC/s (multiply-adds per second).

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks/bench_naive.py``
"""

import numpy as np
import pytest
import scipy.signal

import convcore
from conftest import assert_close_to, seeded

SIZE = 1024
KERNELS = [3, 5, 7, 11, 15]
DTYPES = ["float32", "float64"]

CONTENDERS = {
    "naive": lambda x, k: convcore.convolve(x, k, "same", backend="naive"),
    "scipy-direct": lambda x, k: scipy.signal.convolve(x, k, "same", method="direct"),
}


@pytest.mark.parametrize("contender", list(CONTENDERS))
@pytest.mark.parametrize("k", KERNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_naive_vs_scipy_direct(benchmark, idle_gap, contender, k, dtype):
    x, w = seeded((SIZE, SIZE), dtype), seeded((k, k), dtype, seed=1)
    benchmark.group = f"signal2d-{SIZE}-k{k}-{dtype}-same"
    macs = SIZE * SIZE * k * k
    result = benchmark.pedantic(CONTENDERS[contender], args=(x, w), rounds=3, iterations=1,
                                warmup_rounds=0)
    benchmark.extra_info["GMAC/s"] = macs / benchmark.stats.stats.median / 1e9
    reference = scipy.signal.fftconvolve(x.astype(np.float64), w.astype(np.float64), "same")
    assert_close_to(result, reference, dtype)
