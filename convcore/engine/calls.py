"""One API call after validation: its signature, its plan, its run and its finish.

A repeated call skips building and planning: its signature (operation, mode, shapes, dtypes,
boundary, fill value, axes, threads and options) is one dictionary lookup to a :class:`_Call`
holding the problem and its plan (docs/design.md, "The fast path"). The slow path plans the
problem under the call's :class:`Context`, lets the plan's prepared runner fill a freshly
allocated result and finishes it once here (reverse a swapped correlation, crop, cast to
SciPy's result dtype).

Under ``auto`` a signature's first call is planned with its one-off costs and its later
calls for the steady state. When the two plans name different backends, both are put on
trial (``engine.trials.Turns``): the steady backend answers the next calls, then the first
call's backend, each timed once prepared, and the steady backend keeps the signature unless
it was over TRIAL_MARGIN times slower (docs/design.md, "The fast path": a cost model that is
wrong for this machine and shape costs a few calls, not every call).
"""

import math
import threading

import numpy as np

from convcore._cy.finite import all_finite
from convcore.engine import dispatch as _dispatch
from convcore.engine import long_double as _long_double
from convcore.engine.context import current_context
from convcore.engine.dispatch import ConvMemoryError
from convcore.engine import trials as _trials
from convcore.engine.problem import _max_abs, as_compute
from convcore.engine.trials import layer_trial
from convcore.runtime import options as _options
from convcore.runtime import result_cache as _result_cache
from convcore.runtime import threads as _threads
from convcore.runtime.invalidation import on_settings_changed
from convcore.runtime.tables import BoundedTable

# The fast path's table: call signature -> _Call. Emptied with the dispatcher's plans (a
# setting changed); when full, the oldest signature goes.
_known_calls = BoundedTable(2048)



def forget_calls():
    """Empty the fast path's table (the plans it points to may be stale)."""
    _known_calls.clear()


on_settings_changed(forget_calls)


def _finish(out, problem):
    if problem.swapped and problem.operation == "correlate":
        out = out[(slice(None, None, -1),) * out.ndim]
        out = np.conj(out) if problem.conj else np.ascontiguousarray(out)
    if problem.crop is not None:
        out = np.ascontiguousarray(out[_centered(out.shape, problem.crop)])
    if out.dtype != problem.out_dtype:
        if problem.out_dtype.kind == "i":
            out = out.view(np.int64)  # uint64 bits -> signed, then wrap to the width
        # int64 results are the view itself: no second full copy of the result.
        out = out.astype(problem.out_dtype, copy=False)
    return out


def _centered(shape, target):
    return tuple(slice((n - t) // 2, (n - t) // 2 + t) for n, t in zip(shape, target))


def _empty_result(x, k, problem):
    """A result where one input has no elements: only the fill value can contribute."""
    out = np.zeros(problem.out_shape, problem.dtype)
    if x.size == 0 and k.size and problem.mode != "valid" and problem.boundary == "fill":
        out[...] = problem.fillvalue * problem.taps(k).sum()
    return out


class _Call:
    """What a repeated call needs: the problem, its plan, and how to hand over the arrays."""

    __slots__ = ("problem", "plan", "swap", "dtype", "out_shape", "auto", "pooled",
                 "plain_finish", "runner", "settled", "_first", "_steady", "_turns", "_lock")

    def __init__(self, problem, plan, auto):
        self.problem = problem
        self.swap = problem.swapped
        self.dtype = problem.dtype
        self.out_shape = problem.out_shape
        self.auto = auto
        # Results of PLACE_MIN bytes and more come from the result pool (``new_result``),
        # so only smaller ones may take the direct runner below with ``np.empty``.
        self.pooled = problem.out_bytes >= _result_cache.PLACE_MIN
        self.plain_finish = (not (problem.swapped and problem.operation == "correlate")
                             and problem.crop is None and problem.dtype == problem.out_dtype)
        self._adopt(plan)
        # The first call was planned with its one-off costs (Context.first_call): a signature
        # that comes again is planned once more for the steady state.
        self.settled = not plan.ctx.first_call
        # Auto's trial, if the steady plan names another backend (_begin_steady_state).
        self._first = self._steady = None
        self._turns = _trials.Turns()
        self._lock = threading.Lock()

    def _adopt(self, plan):
        verdict = plan.measured
        if verdict is not None and verdict.overruled:
            plan = verdict.first   # this signature's trial kept the first call's backend
        self.plan = plan
        # Most calls need nothing between the arrays and the runner: no kernel values to
        # look at, no finiteness check, no pool, no cast.
        self.runner = None
        if (self.plain_finish and not self.pooled and not plan.value_dependent
                and not (self.auto and plan.backend.spreads_nonfinite)):
            self.runner = plan.runner

    def __call__(self, a, b):
        if not self.settled:
            return self._settling_call(a, b)
        x, k = self._operands(a, b)
        runner = self.runner
        if runner is not None:
            out = np.empty(self.out_shape, self.dtype)
            runner(x, k, out)
            return out
        return _run(self.plan, x, k, self.problem, self.auto, self.plain_finish)

    def _operands(self, a, b):
        if self.swap:
            a, b = b, a
        return as_compute(a, self.dtype), as_compute(b, self.dtype)

    def _settling_call(self, a, b):
        """A call before the signature settles: plan its steady state, and when auto's
        steady plan names another backend than the first call's (for this call's kernel),
        time both (module docstring)."""
        x, k = self._operands(a, b)
        with self._lock:
            if not self.settled and self._steady is None:
                self._begin_steady_state(k)
            turn, timed = (None, False) if self.settled else self._turns.next()
        if turn is None:
            # Settled, or every trial call handed out and the last still timing.
            return _run(self.plan, x, k, self.problem, self.auto, self.plain_finish)
        on_trial = (self._steady, self._first)[turn]
        start = _trials.clock()
        out = _run(on_trial, x, k, self.problem, self.auto, self.plain_finish)
        seconds = _trials.clock() - start
        if timed:
            with self._lock:
                if not self.settled and self._turns.record(turn, seconds):
                    self._judge()
        return out

    def _begin_steady_state(self, k):
        first = self.plan
        steady = _dispatch.plan(self.problem, first.requested, first.method,
                                first.ctx.replace(first_call=False))
        self._adopt(steady)
        # Value-dependent plans are judged for the kernel they resolve to (the first one
        # this signature meets: later kernels take the steady plan's choice untried).
        first, steady = first.resolve(k), steady.resolve(k)
        if steady.backend is first.backend and self.auto:
            # The same backend both times: a runner-up the models put within
            # SIGNAL_TRIAL_RATIO is tried in the first call's place (for a value-dependent
            # plan, among the plans of this kernel, where the verdict is kept).
            first = steady.runner_up(_trials.SIGNAL_TRIAL_RATIO) or first
        if not self.auto or steady.backend is first.backend or steady.measured is not None:
            self.settled = True
        else:
            self._first, self._steady = first, steady

    def _judge(self):
        """The verdict stays with the steady plan: for `explain`, for the next kernels of a
        value-dependent plan, and for this signature's next _Call if its entry is dropped."""
        steady_seconds, first_seconds = self._turns.best
        self._steady.measured = _dispatch.Measured(self._first, first_seconds, steady_seconds,
                                                   self._turns.switch())
        self._adopt(self.plan)
        self.settled = True


def _run(chosen, x, k, problem, auto, plain_finish=False):
    if chosen.value_dependent:
        chosen = chosen.resolve(k)
        verdict = chosen.measured
        if verdict is not None and verdict.overruled:
            chosen = verdict.first
    if auto and chosen.backend.spreads_nonfinite and not _all_finite(x, k):
        # docs/design.md: NaN/inf stay where they are under auto; an FFT would smear them.
        fallback = chosen.fallback()
        if fallback is not None:
            chosen = fallback.resolve(k)
    p = chosen.problem
    out = new_result(p.out_shape, p.dtype, x)
    chosen.runner(x, k, out)
    return out if plain_finish else _finish(out, problem)


def new_result(shape, dtype, near):
    """An uninitialized result computed from `near`: from the result pool, placed half a page
    from `near` in its page, when it is ``PLACE_MIN`` bytes or more (``result_pool.pyx``:
    a loop over rows of 4 KiB runs 15-25% slower when the two start at nearly the same place
    in their pages); from NumPy otherwise."""
    if math.prod(shape) * np.dtype(dtype).itemsize >= _result_cache.PLACE_MIN:
        return _result_cache.empty(shape, dtype, near)
    return np.empty(shape, dtype)


def _refuse_oversized(problem, ctx):
    needed = problem.out_bytes
    if needed > ctx.max_memory:
        shapes = getattr(problem, "result_shapes", (problem.out_shape,))
        raise ConvMemoryError(
            f"the result{'s' if len(shapes) > 1 else ''} {', '.join(map(str, shapes))} of "
            f"{problem.dtype} need{'' if len(shapes) > 1 else 's'} {needed:,} bytes, over "
            f"max_memory={ctx.max_memory:,}; raise max_memory or "
            f"convcore.set_options(max_memory=...)")


def run_layer(problem, operands, ctx, backend="auto"):
    """One pass of a CNN layer on the one path: refuse oversized results, plan under `ctx`,
    allocate the results, let the plan's runner fill them.

    Parameters
    ----------
    problem : LayerProblem
        Its ``direction`` says which pass, which operands and which results.
    operands : tuple of numpy.ndarray
        C-contiguous, ``problem.dtype``, in the direction's order (forward: x, weight).
    ctx : Context
    backend : str
        'auto' or a backend name.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        The result (the tuple of results of direction 'grads'), ``problem.result_shapes``.
    """
    _refuse_oversized(problem, ctx)
    plan = _dispatch.plan(problem, backend, "auto", ctx)
    results = tuple(new_result(shape, problem.dtype, operands[0])
                    for shape in problem.result_shapes)
    trial = layer_trial(plan) if backend == "auto" else None
    if trial is None:
        plan.runner(*operands, *results)
    else:
        trial.run(operands, results)
    return results[0] if len(results) == 1 else results


def execute(x, k, problem, backend, method, ctx):
    """Plan a signal `problem` under `ctx` and run it: the slow path, taken once per
    signature. Returns (the _Call a repeated call reuses, or None; the finished result)."""
    _refuse_oversized(problem, ctx)
    if problem.out_size == 0 or x.size == 0 or k.size == 0:
        return None, _finish(_empty_result(x, k, problem), problem)
    if _long_double.is_long_double(problem.dtype):
        # No compiled backend or FFT here computes in long double: a direct sum does.
        return None, _finish(_long_double.convolve(x, k, problem, backend), problem)
    chosen = _dispatch.plan(problem, backend, method, ctx)
    call = _Call(problem, chosen, backend == "auto")
    return call, _run(chosen, x, k, problem, call.auto, call.plain_finish)


def finite(array):
    """No NaN or inf in `array` (integer, bool and object arrays cannot hold them)."""
    return all_finite(array)


def _all_finite(x, k):
    # A compiled loop: np.isfinite(x).all() built a temporary as large as x (0.9-1.1 ms of
    # a 7 ms FFT at 1024^2 float32 or 1e6 float64: auto's regret there).
    return all_finite(x) and all_finite(k)


def _signature(a, b, arguments, max_memory, plan, backend_options):
    """The fast path's key: everything the problem and its plan depend on, or None when an
    argument cannot be part of a key (an unhashable fill value, say)."""
    magnitude = None
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        # Exactness bounds of FFT and BLAS plans depend on the inputs' magnitudes.
        magnitude = (_max_abs(a).bit_length(), _max_abs(b).bit_length())
    key = (arguments, a.shape, a.dtype, b.shape, b.dtype, magnitude, _threads.get_num_threads(),
           _options.current(max_memory, plan),
           tuple(sorted(backend_options.items())) if backend_options else None)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def call(arguments, a, b, max_memory, plan, backend_options, build):
    """Run one API call on arrays `a`, `b` (at least 1-D): through the fast path when its
    signature was seen, else `build(a, b)` (which validates and returns (x, k, problem,
    backend, method)) and the slow path, which remembers the signature."""
    key = _signature(a, b, arguments, max_memory, plan, backend_options)
    if key is not None:
        known = _known_calls.get(key)
        if known is not None:
            return known(a, b)
    x, k, problem, backend, method = build(a, b)
    ctx = current_context(backend_options, plan, max_memory)
    call, result = execute(x, k, problem, backend, method, ctx)
    if key is not None and call is not None:
        _known_calls.put(key, call)
    return result
