"""Which backend answers, and why: ``explain`` and SciPy's ``choose_conv_method``.

Both build the problem as the API functions do and ask the dispatcher for its plan; with
``measure`` they also time the candidates on the caller's inputs.
"""

import time

import numpy as np

from . import _dispatch
from ._context import current_context
from ._dispatch import check_method
from ._problem import build_problem


def explain(in1, in2, mode="full", method="auto", *, operation="convolve", backend="auto",
            boundary="fill", fillvalue=0, max_memory=None, measure=False):
    """Show which backend ``auto`` picks for these inputs, and why.

    Parameters
    ----------
    in1, in2, mode, method, backend, boundary, fillvalue, max_memory
        As in :func:`convolve`.
    operation : {'convolve', 'correlate'}
    measure : bool
        Also time every supporting backend once (after a warm-up call).

    Returns
    -------
    str
        One line per backend: predicted time or the reason it declines, the chosen marked.

    Examples
    --------
    >>> import convcore, numpy as np
    >>> print(convcore.explain(np.ones(100), np.ones(5)))  # doctest: +ELLIPSIS
    ConvProblem(convolve, ...
    """
    check_method(method, backend)
    x, k, problem = build_problem(in1, in2, mode, operation, boundary, fillvalue,
                                  kernel_values=True)
    ctx = current_context(max_memory=max_memory)
    chosen = _dispatch.plan(problem, backend, method, ctx)
    text = chosen.explain()
    if measure:
        timings = _measure(x, k, chosen)
        text += "\nmeasured: " + ", ".join(f"{n} {_dispatch._format_seconds(t)}"
                                            for n, t in timings.items())
    return text


def _measure(x, k, chosen, repeats=3):
    problem, ctx = chosen.problem, chosen.ctx
    timings = {}
    for name, _, why in chosen.alternatives:
        if why is not None:
            continue
        runner = _dispatch.plan(problem, name, "auto", ctx).runner
        out = np.empty(problem.out_shape, problem.dtype)
        runner(x, k, out)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            runner(x, k, out)
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    return timings


def choose_conv_method(in1, in2, mode="full", measure=False):
    """Return 'direct' or 'fft': the method ``convolve(method='auto')`` would use.

    Parameters
    ----------
    in1, in2 : array_like
    mode : {'full', 'valid', 'same'}, optional
    measure : bool, optional
        Time the fastest direct and FFT plans and return the faster, with the times.

    Returns
    -------
    str, or (str, dict) when `measure` is True
        As ``scipy.signal.choose_conv_method``: the dict maps 'direct' and 'fft' to seconds.

    Examples
    --------
    >>> import convcore
    >>> convcore.choose_conv_method([1, 2, 3], [1, 1])
    'direct'
    """
    x, k, problem = build_problem(in1, in2, mode, "convolve", kernel_values=True)
    ctx = current_context()
    chosen = _dispatch.plan(problem, "auto", "auto", ctx)
    if not measure:
        return chosen.backend.kind
    times = {}
    for method in ("direct", "fft"):
        try:
            best = _dispatch.plan(problem, "auto", method, ctx)
        except (ValueError, MemoryError):
            continue
        times[method] = _measure(x, k, best)[best.backend.name]
    return min(times, key=times.get), times
