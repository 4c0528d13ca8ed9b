"""Which backend answers, and why: ``explain`` and SciPy's ``choose_conv_method``.

Both build the problem as the API functions do and ask the dispatcher for its plan; with
``measure`` they also time the candidates on the caller's inputs.
"""

import time

import numpy as np

from convcore.engine import trials as _trials
from convcore.engine import dispatch as _dispatch
from convcore.engine import long_double as _long_double
from convcore.engine.context import current_context
from convcore.engine.dispatch import check_method
from convcore.engine.problem import build_problem


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
        One line per backend: predicted time or the reason it declines, the chosen marked;
        then where the cost models' constants came from (this machine's calibration file and
        its date, or the defaults fitted on the development machine, and why a file was
        ignored) and, when calibrated, each backend's constants as factors of the defaults
        (``convcore calibrate``, docs/design.md "Calibration").

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
    text = chosen.explain() + _later_calls(chosen, backend, method)
    if measure:
        text += measured_line(time_backends(x, k, chosen))
    return text


def measured_line(timings):
    """The "measured:" line ``explain`` appends: each backend's time, as predictions are
    formatted."""
    return "\nmeasured: " + ", ".join(f"{name} {_dispatch._format_seconds(seconds)}"
                                      for name, seconds in timings.items())


def _later_calls(chosen, backend, method):
    """A line when the signature's later calls take another backend than its first.

    A first call's predictions count one-off costs (FFTW planning of new lengths); a
    signature that comes again is planned once more for the steady state, and when that
    names another backend both run on trial: the steady backend keeps the signature unless
    its prepared calls took over 1.1 times the first backend's (engine.trials). So do the
    steady choice and a runner-up predicted within SIGNAL_TRIAL_RATIO of it (a near tie).
    Each named backend answers a repeated call with the same bits, first call included; under
    auto the first calls of a signature may be answered by two backends, whose last bits can
    differ.
    """
    if not chosen.ctx.first_call:
        return ""
    later = chosen.ctx.replace(first_call=False)
    steady = _dispatch.plan(chosen.problem, backend, method, later)
    if steady.backend.name == chosen.backend.name:
        return _near_tie(steady, backend, method) if backend == "auto" else ""
    name, first, verdict = steady.backend.name, chosen.backend.name, steady.measured
    if verdict is None:
        # Calls plan without the kernel's values unless the choice depends on them.
        plain = _dispatch.plan(chosen.problem.without_kernel(), backend, method, later)
        if not plain.value_dependent:
            verdict = plain.measured
    if verdict is None:
        return (f"\nlater calls: {name}, after a trial (this first call's predictions count "
                f"one-off planning; {name} answers the next {_trials.TRIAL_CALLS} calls and "
                f"{first} the {_trials.TRIAL_CALLS} after, and {name} keeps the signature "
                f"unless it was over "
                f"{_trials.TRIAL_MARGIN:g}x slower; the two backends' answers may differ in the "
                f"last bits)")
    measured = (f"measured {_dispatch._format_seconds(verdict.steady_seconds)} against "
                f"{first}'s {_dispatch._format_seconds(verdict.first_seconds)}")
    if verdict.overruled:
        return (f"\nlater calls: {first} ({name} was predicted faster once planned, but "
                f"{measured} on this signature's trial)")
    return (f"\nlater calls: {name} ({measured} on this signature's trial; the two backends' "
            f"answers may differ in the last bits)")


def _near_tie(steady, backend, method):
    """The line for a steady plan whose runner-up is predicted within SIGNAL_TRIAL_RATIO of
    it: the trial to come, or how it went."""
    # Calls plan without the kernel's values unless the choice reads them: the trial and its
    # verdict belong to that plan, or to this kernel's.
    plain = _dispatch.plan(steady.problem.without_kernel(), backend, method, steady.ctx)
    if not plain.value_dependent:
        steady = plain
    name, verdict, ratio = steady.backend.name, steady.measured, _trials.SIGNAL_TRIAL_RATIO
    if verdict is None:
        runner_up = steady.runner_up(ratio)
        if runner_up is None:
            return ""
        other = runner_up.backend.name
        return (f"\nlater calls: a trial ({other} is predicted within {ratio:g}x of {name}; "
                f"each answers {_trials.TRIAL_CALLS} of the next calls, and {name} keeps the "
                f"signature unless it was over {_trials.TRIAL_MARGIN:g}x slower; the two "
                f"backends' answers may differ in the last bits)")
    other = verdict.first.backend.name
    measured = (f"{name} measured {_dispatch._format_seconds(verdict.steady_seconds)} "
                f"against {other}'s {_dispatch._format_seconds(verdict.first_seconds)} on this "
                f"signature's trial")
    if verdict.overruled:
        return f"\nlater calls: {other} (predicted within {ratio:g}x of {name}; {measured})"
    return f"\nlater calls: {name} ({other} was predicted within {ratio:g}x; {measured})"


def time_backends(x, k, chosen, repeats=3):
    """{backend: best seconds of `repeats` calls} for every backend that serves `chosen`'s
    problem (after one untimed call); `x`, `k` are the runner's operands (a layer's: x and
    its weight)."""
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
    if _long_double.is_long_double(problem.dtype):
        return _long_double_choice(x, k, problem, measure)
    ctx = current_context()
    chosen = _dispatch.plan(problem, "auto", "auto", ctx)
    if not measure:
        # SciPy answers 'direct' for bool inputs whatever their size; convcore's choice for
        # them is exact either way (integer sums), so it gives SciPy's answer.
        return "direct" if problem.out_dtype == np.bool_ else chosen.backend.kind
    times = {}
    for method in ("direct", "fft"):
        try:
            best = _dispatch.plan(problem, "auto", method, ctx)
        except (ValueError, MemoryError):
            continue
        times[method] = time_backends(x, k, best)[best.backend.name]
    return min(times, key=times.get), times


def _long_double_choice(x, k, problem, measure):
    """Long double is always summed directly (``_long_double``): 'direct', as SciPy says."""
    if not measure:
        return "direct"
    start = time.perf_counter()
    _long_double.convolve(x, k, problem)
    return "direct", {"direct": time.perf_counter() - start}
