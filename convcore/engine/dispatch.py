"""Choosing a backend for a problem: a named one, or ``auto`` (the cheapest that can).

A :class:`Plan` is an object you can print: the chosen backend, why, its predicted time, and
every alternative with its prediction or the reason it declined. Plans are memoized per
(problem signature, backend, method, :class:`Context`), and a plan prepares its backend's
runner once, on its first call: a repeated call skips every ``supports()``, ``cost()`` and
``prepare()`` (docs/design.md, "The flow of one call").

``auto`` takes the lowest ``cost()`` among the backends that support the problem, within the
memory budget, and of the kind ``method=`` asks for. Backends whose verdict depends on the
kernel's values (``reads_kernel_values``) are first asked about the problem without values,
for their best case; only a plan they win is *value-dependent*, and :meth:`Plan.resolve`
plans again with the kernel's values (looked up by checksum once per call).
"""

import collections
import threading
import zlib

import numpy as np

from convcore.engine import calibration as _calibration
from convcore.engine import registry as _registry
from convcore.engine.problem import kernel_values_matter
from convcore.runtime.invalidation import on_settings_changed
from convcore.runtime.tables import BoundedTable

METHODS = ("auto", "direct", "fft")
_PLAN_CACHE_SIZE = 2048
_KERNELS_PER_PLAN = 64

_plans = BoundedTable(_PLAN_CACHE_SIZE)


class ConvMemoryError(MemoryError):
    """A result or workspace would exceed ``max_memory``; raised before allocating."""


class Decline(str):
    """Why a backend is left out of a plan: the text a user reads, and its cause.

    ``cause`` is ``"backend"`` (its own ``supports`` said no), ``"memory"`` (result plus
    workspace over ``max_memory``: a :class:`ConvMemoryError` when nothing else can run) or
    ``"method"`` (not the kind ``method=`` asks for). The error type follows the cause; the
    text is never parsed.
    """

    def __new__(cls, reason, cause="backend"):
        self = super().__new__(cls, reason)
        self.cause = cause
        return self


# How a steady-state plan's trial went (engine.calls): the first call's plan, one prepared
# call's time on each backend, and whether the first call's backend took the signature back.
Measured = collections.namedtuple("Measured", "first first_seconds steady_seconds overruled")


class Plan:
    """The dispatcher's decision for one problem under one context.

    Attributes
    ----------
    backend : Backend
        The backend that runs.
    reason : str
        Why it was chosen.
    cost : float
        Its predicted seconds.
    alternatives : list of (name, cost or None, Decline or None)
        Every backend considered, in order of predicted cost; declined ones carry a
        :class:`Decline` (a str with its ``cause``).
    problem : ConvProblem or LayerProblem
    ctx : Context
    value_dependent : bool
        The choice was made for the kernel's best case (see the module docstring): call
        :meth:`resolve` with the kernel before running.
    measured : Measured or None
        For auto's steady-state plan whose backend differs from the first call's, or whose
        runner-up was predicted close to it: how its trial went (``engine.calls``; the
        other candidate in ``first``); None before a trial.
    trial : LayerTrial, False or None
        For auto's layer plans: the trial against a close runner-up (``engine.calls``),
        False when there is none, None before the first call.
    """

    __slots__ = ("backend", "reason", "cost", "alternatives", "problem", "ctx", "method",
                 "requested", "value_dependent", "measured", "trial", "_runner", "_fallback",
                 "_by_kernel", "_lock")

    def __init__(self, backend, reason, cost, alternatives, problem, ctx, method="auto",
                 requested="auto"):
        self.backend = backend
        self.reason = reason
        self.cost = cost
        self.alternatives = alternatives
        self.problem = problem
        self.ctx = ctx
        self.method = method
        self.requested = requested
        self.value_dependent = bool(getattr(backend, "reads_kernel_values", False)
                                    and problem.kind == "signal" and problem.kernel is None
                                    and kernel_values_matter(problem))
        self.measured = None
        self.trial = None
        self._runner = None
        self._fallback = None
        self._by_kernel = BoundedTable(_KERNELS_PER_PLAN)
        self._lock = threading.Lock()

    @property
    def name(self):
        return self.backend.name

    def resolve(self, k):
        """The plan for these kernel values (this plan unless it is value-dependent).

        One checksum of the kernel, one lookup and one comparison of its bytes per call: the
        plans for kernels seen before are kept here. A CRC picks the entry and the stored
        bytes confirm it, so a collision costs a re-plan, never a wrong plan (a
        cryptographic digest of a 63 x 63 kernel cost 15-30 us a call, more than an FFT of
        a 64 x 64 image saves).
        """
        if not self.value_dependent:
            return self
        dtype = self.problem.dtype
        if k.dtype != dtype or not k.flags.c_contiguous:
            k = np.ascontiguousarray(k, dtype)
        values = k.tobytes()
        checksum = zlib.crc32(values)
        found = self._by_kernel.get(checksum)
        if found is not None and found[0] == values:
            return found[1]
        resolved = plan(self.problem.with_kernel(k), self.requested, self.method, self.ctx)
        self._by_kernel.put(checksum, (values, resolved))
        return resolved

    @property
    def runner(self):
        """The backend's prepared ``runner(x, k, out)``, built on first use."""
        runner = self._runner
        if runner is None:
            with self._lock:
                if self._runner is None:
                    self._runner = self.backend.prepare(self.problem, self.ctx)
                runner = self._runner
        return runner

    def runner_up(self, within):
        """The plan of the next cheapest supported backend when it is predicted within
        `within` times this plan's cost, else None (auto's near-tie trial, ``engine.trials``).
        A backend that reads the kernel's values is offered only by a plan made for one
        kernel's values (``resolve``): a plan for every kernel predicted it at its best case,
        and adopted it would run every later kernel."""
        for name, cost, why in self.alternatives:
            if why is not None or name == self.backend.name:
                continue
            backend = _registry.get_backend(name)
            reads_values = getattr(backend, "reads_kernel_values", False)
            if cost is None or cost > within * self.cost or (
                    reads_values and getattr(self.problem, "kernel", None) is None):
                return None
            return Plan(backend, f"predicted within {within:g}x of {self.backend.name}", cost,
                        self.alternatives, self.problem, self.ctx, self.method, name)
        return None

    def fallback(self):
        """The plan of the cheapest supported alternative that keeps NaN/inf local, or None."""
        if self._fallback is None:
            found = False
            for name, cost, why in self.alternatives:
                backend = _registry.get_backend(name)
                if why is None and not getattr(backend, "spreads_nonfinite", False):
                    found = Plan(backend, "keeps NaN/inf local (the input is not finite)",
                                 cost, self.alternatives, self.problem, self.ctx, self.method,
                                 name)
                    break
            self._fallback = found
        return self._fallback or None

    def explain(self):
        """A table of every backend: supported or why not, predicted time, chosen."""
        lines = [f"{self.problem!r}", f"chosen: {self.backend.name} ({self.reason})"]
        width = max((len(name) for name, _, _ in self.alternatives), default=4)
        for name, cost, why in self.alternatives:
            mark = "*" if name == self.backend.name else " "
            if why is None:
                lines.append(f" {mark} {name:<{width}}  predicted {_format_seconds(cost)}")
            else:
                lines.append(f" {mark} {name:<{width}}  declines: {why}")
        lines.extend(_constants_lines(self.alternatives, width))
        return "\n".join(lines)

    def __repr__(self):
        return f"<Plan {self.backend.name}: {self.reason}, predicted {_format_seconds(self.cost)}>"

    __str__ = explain


def _constants_lines(alternatives, width):
    """Which cost constants the predictions used, and where they came from."""
    lines = [f"cost constants: {_calibration.source()}"]
    described = [(name, _calibration.describe(name)) for name, _, _ in alternatives]
    if any(text not in (None, "defaults") for _, text in described):
        lines += [f"   {name:<{width}}  {text}" for name, text in described if text]
    return lines


def _format_seconds(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def clear_plan_cache():
    """Forget memoized plans (after a backend is registered or a setting changes; the fast
    path's signatures, ``engine.calls``, are forgotten on the same signal)."""
    _plans.clear()


on_settings_changed(clear_plan_cache)


def check_method(method, backend):
    if method not in METHODS:
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    if backend == "auto" or method == "auto":
        return
    kind = _registry.get_backend(backend).kind
    if kind != method:
        raise ValueError(f"method={method!r} conflicts with backend={backend!r}, which is a "
                         f"{kind!r} backend; give one of them")


def _assess(backend, problem, ctx):
    """(cost, None) when `backend` can run `problem` within memory, else (None, Decline)."""
    verdict = backend.supports(problem, ctx)
    if verdict is not True:
        return None, Decline(str(verdict) if verdict else "declined")
    needed = problem.out_bytes + backend.workspace(problem, ctx)
    if needed > ctx.max_memory:
        return None, Decline(f"needs {needed:,} bytes (result + workspace), over max_memory="
                             f"{ctx.max_memory:,}", cause="memory")
    return backend.cost(problem, ctx), None


def plan(problem, backend="auto", method="auto", ctx=None):
    """Return the memoized :class:`Plan` for `problem` under `ctx`.

    Parameters
    ----------
    problem : ConvProblem or LayerProblem
    backend : str
        'auto' or a registered backend name.
    method : {'auto', 'direct', 'fft'}
        Restricts ``auto`` to backends of that kind.
    ctx : Context
        The call's settings (threads, max_memory, plan effort, backend_options); part of the
        memo key, since costs and workspaces depend on them.

    Raises
    ------
    ValueError
        A named backend that cannot run the problem (with its reason), or no backend at all.
    ConvMemoryError
        The plan would need more than ``ctx.max_memory`` bytes.
    """
    key = (problem.key, backend, method, ctx)
    cached = _plans.get(key)
    if cached is not None:
        return cached
    if backend != "auto":
        chosen = _registry.get_backend(backend)
        cost, why = _assess(chosen, problem, ctx)
        if why is not None:
            error = ConvMemoryError if why.cause == "memory" else ValueError
            raise error(f"backend {backend!r} cannot run this problem: {why}")
        result = Plan(chosen, "requested", cost, [(backend, cost, None)], problem, ctx,
                      method, backend)
    else:
        result = _choose(problem, method, ctx)
    _plans.put(key, result)
    return result


def _choose(problem, method, ctx):
    assessed = []
    for candidate in _registry.all_backends():
        if method != "auto" and candidate.kind != method:
            assessed.append((candidate.name, None, Decline(f"not a {method!r} backend",
                                                           cause="method")))
            continue
        if method == "direct" and not getattr(candidate, "sums_directly", True):
            # SciPy's direct method (and convolve2d) is accurate element by element; a
            # low-rank sum is accurate relative to the largest output only: named, it runs.
            assessed.append((candidate.name, None, Decline(
                "not a sum of every product, as method='direct' and convolve2d promise; name "
                "it to use it", cause="method")))
            continue
        cost, why = _assess(candidate, problem, ctx)
        assessed.append((candidate.name, cost, why))
    supported = sorted((a for a in assessed if a[2] is None), key=lambda a: a[1])
    declined = [a for a in assessed if a[2] is not None]
    if not supported and method == "fft":
        # SciPy's method='fft' on a problem no FFT plan can answer exactly (integers past the
        # bound): a direct backend answers (docs/design.md, "Semantics").
        return _choose(problem, "direct", ctx)
    if not supported:
        reasons = "; ".join(f"{name}: {why}" for name, _, why in declined)
        causes = {why.cause for _, _, why in declined} - {"method"}
        error = ConvMemoryError if causes == {"memory"} else ValueError
        raise error(f"no backend can run this problem ({reasons})")
    name, cost, _ = supported[0]
    reason = "cheapest predicted" if len(supported) > 1 else "only backend that supports it"
    return Plan(_registry.get_backend(name), reason, cost, supported + declined, problem, ctx,
                method)
