"""``convcore calibrate``: measure the cost models' constants on this machine and store them.

Every registered backend that declared calibrated constants (``convcore.engine.calibration``)
measures its own runner on a few shapes chosen to isolate one term of its model each
(compute-bound, memory-bound, call overhead, all threads against one), through the
:class:`Timer` given here, and fits each constant so that its ``cost()`` predicts what was
measured. The engine never names a backend: it asks each one (``Backend.calibrate``), then
stores what they fitted (``_calibration.save``). docs/design.md, "Calibration".
"""

import argparse
import collections
import sys
import time

import numpy as np

from convcore.benchmarks.timing import idle_gap, rounds_for, warm_up
from convcore.cli.bench.machine import cpu_snapshot, other_load
from convcore.engine import calibration as _calibration
from convcore.engine import registry as _registry
from convcore.engine.context import current_context
from convcore.engine.layer_problem import build_layer_problem
from convcore.engine.problem import build_problem
from convcore.runtime import contention as _contention

# Between two measurements: other pools' threads (OpenBLAS, FFTW) stop spinning
# (docs/design.md, "Performance notes").
IDLE_GAP = 0.1
WARM_UP_SECONDS = 0.05
ROUNDS = {"quick": 3, "full": 7}
# Other processes' share of the CPUs during a calibration above which `convcore calibrate`
# says the values are those of a busy machine.
BUSY = 0.1
# ... and during thread-scaling rounds, above which they are not fitted: a core was not free.
SCALING_BUSY = 0.25
# A fitted constant stays this much inside the limit the loader enforces.
FIT_MARGIN = 1.01

Case = collections.namedtuple("Case", "x k problem ctx")


class Timer:
    """What a backend's ``calibrate`` measures with: problems, timed runners, fits.

    Attributes
    ----------
    quick : bool
        Tiny shapes and few rounds (seconds in all; for tests): backends pick their shapes
        with :meth:`size`.
    measurements : list of dict
        Every timing taken (backend, label, problem, threads, measured and default-predicted
        seconds), stored in the calibration file.
    """

    def __init__(self, quick=False, progress=None):
        self.quick = quick
        self.rounds = ROUNDS["quick" if quick else "full"]
        self.gap = 0.0 if quick else IDLE_GAP
        self.measurements = []
        self.progress = progress or (lambda label: None)
        self.busy = []  # thread scalings not fitted: the machine was busy meanwhile
        self._fits = []

    def size(self, full, quick):
        """`full` normally, `quick` in a quick calibration."""
        return quick if self.quick else full

    def signal(self, x, k, ctx, mode="same", operation="convolve"):
        """A signal problem of `x` and `k` (the engine's normalization) under `ctx`."""
        x, k, problem = build_problem(x, k, mode, operation, kernel_values=True)
        return Case(x, k, problem, ctx)

    def layer(self, x, weight, ctx, **arguments):
        """A CNN layer (``convcore.nn.conv2d``'s arguments) under `ctx`."""
        x, weight, problem = build_layer_problem(x, weight, **arguments)
        return Case(x, weight, problem, ctx)

    def time(self, backend, case, label):
        """Seconds of one call of `backend`'s prepared runner on `case` (after an idle gap
        and a warm-up, the best of several rounds); recorded in :attr:`measurements`."""
        return self.first_and_steady(backend, case, label)[1]

    def first_and_steady(self, backend, case, label):
        """(seconds of the first call, best seconds of later calls) of `backend`'s runner,
        freshly prepared for `case`: the first pays what a new shape costs once (FFTW
        planning)."""
        self.progress(f"{backend.name}: {label}")
        runner = backend.prepare(case.problem, case.ctx)
        out = np.empty(case.problem.out_shape, case.problem.dtype)
        idle_gap(self.gap)
        start = time.perf_counter()
        runner(case.x, case.k, out)
        first = time.perf_counter() - start
        seconds = self.seconds(lambda: runner(case.x, case.k, out))
        self.measurements.append({
            "backend": backend.name, "label": label, "problem": repr(case.problem),
            "threads": case.ctx.threads, "seconds": seconds, "first_call_seconds": first,
            "predicted_by_defaults": backend.cost(case.problem, case.ctx)})
        return first, seconds

    def seconds(self, call):
        """Seconds per call of `call()`: a warm-up, then the best of rounds of at least ~2 ms.

        The best, not the median: calibration wants the machine's speed, and another process
        only ever slows a round. On the 2-core VM with others using 83% of the CPUs, one
        minute gave separable's 512^2 Gaussian k31 (float32, one thread) a median of 1.25 ms
        and a best of 0.73 ms; a rate fitted on the median was 1.7x slow.
        """
        one = warm_up(call, WARM_UP_SECONDS / (5 if self.quick else 1))
        rounds, iterations = rounds_for(one, "quick", self.rounds, self.rounds)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(iterations):
                call()
            times.append((time.perf_counter() - start) / iterations)
        return min(times)

    def solve(self, fit, backend, cases, name, label, key=None, bounds=None, predict=None):
        """Time `backend` on `cases` (one :class:`Case` or several) and fit `name`
        (``Fit.solve``) so that `predict` (default: ``backend.cost``) meets the measurement;
        over several cases, their geometric means (one constant for sizes in and out of
        cache)."""
        predict = predict or (lambda c: backend.cost(c.problem, c.ctx))
        cases = [cases] if isinstance(cases, Case) else list(cases)
        measured = [self.time(backend, c, label if len(cases) == 1 else
                              f"{label} ({c.problem.x_shape})") for c in cases]
        fit.solve(name, lambda: _geometric_mean([predict(c) for c in cases]),
                  _geometric_mean(measured), key, bounds)

    def thread_scaling(self, fit, backend, case_for, threads, name, label, key=None,
                       bounds=None, predict=None):
        """Time `backend` on ``case_for(1)`` and ``case_for(threads)`` and fit `name` so that
        the predicted ratio of the two meets the measured one: thread scaling apart from the
        rates, whose errors cancel in the ratio. Nothing to fit on one thread."""
        if threads <= 1:
            return
        predict = predict or (lambda c: backend.cost(c.problem, c.ctx))
        cases = [case_for(t) for t in (1, threads)]
        self.progress(f"{backend.name}: {label}, 1 against {threads} threads")
        calls = []
        for c in cases:
            runner = backend.prepare(c.problem, c.ctx)
            out = np.empty(c.problem.out_shape, c.problem.dtype)
            calls.append(lambda runner=runner, c=c, out=out: runner(c.x, c.k, out))
        # Rounds alternate between the two, and each keeps its best: another process that
        # takes a core for a while slows a parallel region most, and only slows.
        idle_gap(self.gap)
        load_start = cpu_snapshot()
        best = [min(self._round(call) for _ in range(2)) for call in calls]  # warm-up
        for _ in range(self.rounds):
            best = [min(b, self._round(call)) for b, call in zip(best, calls)]
        others = other_load(load_start, cpu_snapshot())
        for c, seconds in zip(cases, best):
            self.measurements.append({
                "backend": backend.name, "label": f"{label} (best of rounds)",
                "problem": repr(c.problem), "threads": c.ctx.threads, "seconds": seconds,
                "predicted_by_defaults": backend.cost(c.problem, c.ctx)})
        if others is not None and others > SCALING_BUSY:
            # Our extra threads had no free core: what was measured is the load, not the
            # machine (two calibrations 20 minutes apart, others using ~75% of the CPUs,
            # fitted openmp's efficiency 0.46 and 1.09): the default stays.
            self.busy.append(f"{backend.name}.{name}" + (f"[{key}]" if key else "")
                             + f" (others used {others:.0%} of the CPUs)")
            return
        fit.solve(name, lambda: predict(cases[1]) / predict(cases[0]), best[1] / best[0],
                  key, bounds)

    @staticmethod
    def _round(call, seconds=2e-3):
        """Seconds per call of `call` over one round of at least `seconds`."""
        count, start = 0, time.perf_counter()
        while True:
            call()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return elapsed / count

    def fit(self, constants):
        """A :class:`Fit` of `constants` (a backend's ``calibrated_constants``)."""
        fit = Fit(constants)
        self._fits.append(fit)
        return fit

    @property
    def not_fitted(self):
        """Constants the model could not fit to their measurement (``Fit.not_fitted``)."""
        return sorted({name for fit in self._fits for name in fit.not_fitted})


class Fit:
    """Constants fitted one at a time, each so that one prediction meets one measurement.

    ``solve(name, predict, measured)`` finds the factor on `name`'s default (on one entry of
    it with `key`, else on all its entries alike) for which ``predict()`` returns `measured`
    (within `bounds`, the values that make physical sense, e.g. a thread efficiency),
    with every constant fitted before in place; ``finish()`` solves every equation once more
    with all the others fitted (each term leaks a little into the others' shapes) and returns
    ``{name: value}``.

    A measurement the model cannot meet within the loader's limit (``_calibration.LIMIT``
    times the default) says the model's shape is wrong there, not that the constant is 100x
    off: the constant keeps its value and is listed in :attr:`not_fitted`. A measurement
    beyond `bounds` takes the bound.
    """

    def __init__(self, constants):
        self.constants = constants
        self.values = {}
        self.not_fitted = []
        self._equations = []

    def solve(self, name, predict, measured, key=None, bounds=None):
        self._equations.append((name, key, predict, measured, bounds))
        self._solve(name, key, predict, measured, bounds)

    def finish(self, sweeps=1):
        for _ in range(sweeps):
            self.not_fitted = []  # what the last sweep could not meet
            for equation in self._equations:
                self._solve(*equation)
        return dict(self.values)

    def _value(self, name, key, factor):
        default = self.constants.defaults[name]
        if key is None:
            return _scaled(default, factor)
        current = dict(self.values.get(name, default))
        current[key] = default[key] * factor
        return current

    def _predict(self, name, key, factor, predict):
        with self.constants.trial({**self.values, name: self._value(name, key, factor)}):
            return predict()

    def _solve(self, name, key, predict, measured, bounds=None):
        # Each end of the search: (factor on the default, whether it is a physical bound).
        limit = _calibration.LIMIT / FIT_MARGIN
        low, high = (1 / limit, False), (limit, False)
        if bounds is not None:
            default = self.constants.defaults[name]
            default = default[key] if key is not None else default
            low, high = max(low, (bounds[0] / default, True)), \
                min(high, (bounds[1] / default, True))
        at_low = self._predict(name, key, low[0], predict)
        at_high = self._predict(name, key, high[0], predict)
        if at_low == at_high:
            return  # this prediction does not depend on the constant here
        rising = at_high > at_low
        if min(at_low, at_high) < measured < max(at_low, at_high):
            lo, hi = np.log(low[0]), np.log(high[0])
            for _ in range(48):
                mid = (lo + hi) / 2
                if (self._predict(name, key, float(np.exp(mid)), predict) < measured) == rising:
                    lo = mid
                else:
                    hi = mid
            factor = float(np.exp((lo + hi) / 2))
        else:
            factor, physical = low if (measured <= at_low) == rising else high
            if not physical:
                label = f"{self.constants.backend}.{name}" + (f"[{key}]" if key else "")
                if label not in self.not_fitted:
                    self.not_fitted.append(label)
                return
        self.values[name] = self._value(name, key, factor)


def _geometric_mean(values):
    return float(np.exp(np.mean(np.log(values))))


def _scaled(default, factor):
    if isinstance(default, dict):
        return {k: _scaled(v, factor) for k, v in default.items()}
    if isinstance(default, (tuple, list)):
        return tuple((x, _scaled(y, factor)) for x, y in default)
    return default * factor


def calibrate(*, quick=False, threads=None, progress=True):
    """Measure the constants of every backend's cost model on this machine and store them.

    ``auto`` picks the backend with the lowest predicted time; the predictions are formulas in
    operations times per-machine constants (seconds per multiply-add per dtype and blocking,
    GEMM and FFT rates, FFTW's planning time, memory bandwidth, thread scaling). Their
    defaults were fitted on the development machine; this measures them here, with each
    backend timing its own runner on a few shapes, and stores them in convcore's cache
    folder, where every later process finds them.

    Parameters
    ----------
    quick : bool, optional
        Tiny shapes and few rounds: a few seconds, for tests; the values are rough.
    threads : int, optional
        The threads "all threads" means (default: the CPUs this process may use).
    progress : bool, optional
        Draw a progress bar on stderr.

    Returns
    -------
    dict
        ``path`` (the file written), ``seconds`` (the time it took), ``constants``
        (``{backend: {name: (default, calibrated)}}``), ``not_fitted`` (constants whose
        measurement the model could not meet within 100x of the default: they keep their
        defaults, and the model deserves a look there) and
        ``errors`` (``{backend: message}`` for backends whose calibration failed; they keep
        their defaults), ``other_load`` (the share of all CPUs other processes used
        meanwhile, None where unknown: above a few percent, the rates come out slower than
        the machine is when quiet), ``not_fitted_busy`` (thread scalings left at their
        defaults because other processes used more than a quarter of the CPUs during their
        rounds).

    Notes
    -----
    The file is keyed by the CPU model, the instruction set the extensions were built for,
    the convcore version and the build flags; a file made for another key, or damaged, is
    ignored with a :class:`convcore.CalibrationWarning` and the defaults are used
    (docs/design.md, "Calibration"). ``CONVCORE_CACHE_DIR`` moves the cache folder. While
    it runs, every cost model predicts with its defaults (what the fits start from), also
    for other threads of the process; plans made meanwhile are forgotten at the end. Each
    timing is the best of several rounds after an idle gap and a warm-up, on a quiet
    machine ideally: under load the rates come out slower than the machine is. About 20
    seconds on two cores.

    Examples
    --------
    >>> import convcore
    >>> result = convcore.calibrate(quick=True, progress=False)  # doctest: +SKIP
    >>> print(convcore.explain([1.0, 2.0, 3.0], [1.0, 1.0]))  # doctest: +SKIP
    ConvProblem(...
    cost constants: calibrated on this machine ...
    """
    start = time.perf_counter()
    load_start = cpu_snapshot()
    threads = int(threads or _contention.cpu_budget())
    bar = _ProgressBar(len(_registry.list_backends())) if progress else None
    timer = Timer(quick, bar.label if bar else None)
    ctx = current_context().replace(threads=threads, first_call=False)
    fitted, constants, errors = {}, {}, {}
    was_adaptive = _contention.adaptive()
    _contention.set_adaptive(False)  # the thread counts asked for, whatever the load
    try:
        with _calibration.defaults_only():
            for backend in _registry.all_backends():
                declared = _calibration.declared(backend.name)
                try:
                    values = backend.calibrate(ctx, timer) or {}
                    unknown = set(values) - set(declared.defaults if declared else ())
                    if unknown:
                        raise ValueError(f"fitted constants it did not declare: "
                                         f"{sorted(unknown)}")
                except Exception as err:  # one backend's failure keeps its defaults only
                    errors[backend.name] = f"{type(err).__name__}: {err}"
                    values = {}
                if values:
                    fitted[backend.name] = values
                    constants[backend.name] = {n: (declared.defaults[n], v)
                                               for n, v in values.items()}
                if bar:
                    bar.advance()
    finally:
        _contention.set_adaptive(was_adaptive)
        if bar:
            bar.close()
    not_fitted = timer.not_fitted
    seconds = time.perf_counter() - start
    others = other_load(load_start, cpu_snapshot())
    path = _calibration.save(fitted, timer.measurements, seconds, threads, quick, others)
    return {"path": path, "seconds": seconds, "constants": constants, "not_fitted": not_fitted,
            "not_fitted_busy": timer.busy, "errors": errors, "other_load": others}


class _ProgressBar:
    """One line on stderr: a bar over the backends, and what is being measured."""

    def __init__(self, total, stream=None):
        self.total, self.done = max(total, 1), 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()

    def label(self, text):
        width = 30
        filled = int(width * self.done / self.total)
        elapsed = time.perf_counter() - self.start
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {elapsed:4.0f} s  "
                          f"{text[:56]:<56}")
        self.stream.flush()

    def advance(self):
        self.done += 1
        self.label("")

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def main(argv):
    """``convcore calibrate [--quick] [--threads N]``: measure, store, print the factors."""
    parser = argparse.ArgumentParser(
        prog="convcore calibrate",
        description="Measure the constants of the backends' cost models on this machine "
                    "(about 20 seconds on two cores) and store them in convcore's cache "
                    "folder, where auto's predictions read them.")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and few rounds: seconds, rough values (for tests)")
    parser.add_argument("--threads", type=int, default=None,
                        help="what 'all threads' means (default: the CPUs this process may use)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    try:
        result = calibrate(quick=args.quick, threads=args.threads)
    except OSError as err:  # the cache folder cannot be written
        print(f"convcore calibrate: cannot store the calibration: {err}", file=sys.stderr)
        return 2
    print(f"convcore calibrate: {result['seconds']:.1f} s, written to {result['path']}")
    for backend, values in result["constants"].items():
        for name, (default, value) in values.items():
            print(f"  {backend:<10} {name:<26} x{_calibration.ratio(default, value):<8.3g}"
                  f" {_short(value)}")
    for name in result["not_fitted"]:
        print(f"  not fitted (the model cannot meet its measurement within 100x of the "
              f"default; the default stays): {name}", file=sys.stderr)
    for name in result["not_fitted_busy"]:
        print(f"  thread scaling not fitted (no free core; the default stays): {name}",
              file=sys.stderr)
    if result["other_load"] and result["other_load"] > BUSY:
        print(f"  note: other processes used {result['other_load']:.0%} of the CPUs meanwhile; "
              f"the rates come out slower than this machine is when quiet: calibrate again "
              f"when it is", file=sys.stderr)
    for backend, message in result["errors"].items():
        print(f"  {backend}: not calibrated ({message}); it keeps its defaults",
              file=sys.stderr)
    return 1 if result["errors"] else 0


def _short(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"({x}, {_short(y)})" for x, y in value) + ")"
    return f"{value:.3g}"
