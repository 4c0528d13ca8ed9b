"""Long double (float128 / complex256 on x86-64) inputs: a direct sum in long double.

No compiled backend loops over long double, and no FFT library here transforms it; SciPy
answers such inputs in long double (its direct loops, or ``scipy.fft`` in long double). So
convcore computes them itself, directly: the extended signal is gathered once (boundary
tables as every backend uses), then one shifted product is added per kernel tap, each a NumPy
operation in the inputs' own precision. That costs ``kernel.size`` passes over the result,
fine for the small problems long double is used for, and it is exact up to long double
rounding (no transform error), whichever ``method`` the caller asked for.
"""

import itertools

import numpy as np

from convcore.engine.batching import run_batched
from convcore.engine.boundary import extension_tables

# Only where long double is wider than double; elsewhere np.longdouble *is* float64.
_WIDER = np.finfo(np.longdouble).nmant > np.finfo(np.float64).nmant
DTYPES = frozenset(map(np.dtype, (np.longdouble, np.clongdouble))) if _WIDER else frozenset()
# 'fft' is fftconvolve's default: no FFT here transforms long double, and the direct sum is
# at least as accurate as SciPy's long double FFT.
BACKENDS = ("auto", "naive", "fft")


def is_long_double(dtype):
    return dtype in DTYPES


def convolve(x, k, problem, backend="auto"):
    """The result of `problem` (long double compute dtype) as a new array.

    Parameters
    ----------
    x, k : numpy.ndarray
        Signal and kernel as ``build_problem`` returns them.
    problem : ConvProblem
    backend : str
        'auto', 'naive' (the direct loop this sum stands in for) or 'fft'; others raise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} cannot run this problem: {problem.dtype} "
                         "(long double) is computed by convcore's long double direct sum; "
                         "give backend='auto', 'naive' or 'fft'")
    w = problem.taps(k)
    out = np.empty(problem.out_shape, problem.dtype)
    if problem.is_batched:
        starts = tuple(problem.starts[a] for a in problem.axes)
        run_batched(x, w, problem, out,
                    lambda xs, ws, target: _correlate(xs, ws, target, starts, problem))
    else:
        _correlate(x, w, out, problem.starts, problem)
    return out


def _correlate(x, w, out, starts, problem):
    """out = correlation of x with taps w (same rank), extended by the problem's boundary."""
    tables = extension_tables(x.shape, w.shape, out.shape, tuple(starts), problem.boundary)
    index = np.ix_(*(tables[d, : out.shape[d] + w.shape[d] - 1] for d in range(x.ndim)))
    extended = x[tuple(np.maximum(i, 0) for i in index)]
    outside = np.zeros(extended.shape, dtype=bool)
    for i in index:
        outside |= i < 0
    extended[outside] = problem.fillvalue
    out[...] = 0
    for tap in itertools.product(*(range(m) for m in w.shape)):
        window = tuple(slice(t, t + o) for t, o in zip(tap, out.shape))
        out += extended[window] * w[tap]
