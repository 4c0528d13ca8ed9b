"""Choosing a backend for a problem: a named one, or ``auto`` (the cheapest that can).

A :class:`Plan` is an object you can print: the chosen backend, why, its predicted time, and
every alternative with its prediction or the reason it declined. Plans are memoized per
problem signature, so a repeated call skips every ``supports()`` and ``cost()``.

Until the calibrated cost models land, ``auto`` is the simple rule: the lowest ``cost()``
among the backends that support the problem, within the memory budget, and of the kind
``method=`` asks for.
"""

import threading

from . import _registry

METHODS = ("auto", "direct", "fft")
_PLAN_CACHE_SIZE = 2048

_plans = {}
_plans_lock = threading.Lock()


class ConvMemoryError(MemoryError):
    """A result or workspace would exceed ``max_memory``; raised before allocating."""


class Plan:
    """The dispatcher's decision for one problem.

    Attributes
    ----------
    backend : Backend
        The backend that runs.
    reason : str
        Why it was chosen.
    cost : float
        Its predicted seconds.
    alternatives : list of (name, cost or None, reason or None)
        Every backend considered, in order of predicted cost; declined ones carry a reason.
    """

    __slots__ = ("backend", "reason", "cost", "alternatives", "problem")

    def __init__(self, backend, reason, cost, alternatives, problem):
        self.backend = backend
        self.reason = reason
        self.cost = cost
        self.alternatives = alternatives
        self.problem = problem

    @property
    def name(self):
        return self.backend.name

    def fallback(self, exclude_spreading=True):
        """The cheapest supported alternative that keeps NaN/inf local, or None."""
        for name, cost, why in self.alternatives:
            if why is None:
                backend = _registry.get_backend(name)
                if not (exclude_spreading and getattr(backend, "spreads_nonfinite", False)):
                    return backend
        return None

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
        return "\n".join(lines)

    def __repr__(self):
        return f"<Plan {self.backend.name}: {self.reason}, predicted {_format_seconds(self.cost)}>"

    __str__ = explain


def _format_seconds(seconds):
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def clear_plan_cache():
    """Forget memoized plans (after a backend is registered or a setting changes)."""
    with _plans_lock:
        _plans.clear()


def check_method(method, backend):
    if method not in METHODS:
        raise ValueError(f"method must be 'auto', 'direct' or 'fft', got {method!r}")
    if backend == "auto" or method == "auto":
        return
    kind = _registry.get_backend(backend).kind
    if kind != method:
        raise ValueError(f"method={method!r} conflicts with backend={backend!r}, which is a "
                         f"{kind!r} backend; give one of them")


def _assess(backend, problem, max_memory):
    """(cost, None) when `backend` can run `problem` within memory, else (None, reason)."""
    verdict = backend.supports(problem)
    if verdict is not True:
        return None, str(verdict) if verdict else "declined"
    needed = problem.out_bytes + backend.workspace(problem)
    if needed > max_memory:
        return None, (f"needs {needed:,} bytes (result + workspace), over max_memory="
                      f"{max_memory:,}")
    return backend.cost(problem), None


def plan(problem, backend="auto", method="auto", threads=1, max_memory=None):
    """Return the memoized :class:`Plan` for `problem`.

    Parameters
    ----------
    problem : ConvProblem
    backend : str
        'auto' or a registered backend name.
    method : {'auto', 'direct', 'fft'}
        Restricts ``auto`` to backends of that kind.
    threads : int
        Part of the memo key: costs depend on it.
    max_memory : int
        Bytes a plan may use (result plus workspace).

    Raises
    ------
    ValueError
        A named backend that cannot run the problem (with its reason), or no backend at all.
    ConvMemoryError
        The plan would need more than `max_memory` bytes.
    """
    key = (problem.key, backend, method, threads, max_memory)
    cached = _plans.get(key)
    if cached is not None:
        return cached
    if backend != "auto":
        chosen = _registry.get_backend(backend)
        cost, why = _assess(chosen, problem, max_memory)
        if why is not None:
            error = ConvMemoryError if why.startswith("needs ") else ValueError
            raise error(f"backend {backend!r} cannot run this problem: {why}")
        result = Plan(chosen, "requested", cost, [(backend, cost, None)], problem)
    else:
        result = _choose(problem, method, max_memory)
    with _plans_lock:
        if len(_plans) >= _PLAN_CACHE_SIZE:
            _plans.clear()
        _plans[key] = result
    return result


def _choose(problem, method, max_memory):
    assessed = []
    for candidate in _registry.all_backends():
        if method != "auto" and candidate.kind != method:
            assessed.append((candidate.name, None, f"not a {method!r} backend"))
            continue
        cost, why = _assess(candidate, problem, max_memory)
        assessed.append((candidate.name, cost, why))
    supported = sorted((a for a in assessed if a[2] is None), key=lambda a: a[1])
    declined = [a for a in assessed if a[2] is not None]
    if not supported and method == "fft":
        # SciPy's method='fft' on a problem no FFT plan can answer exactly (integers past the
        # bound): DESIGN.md says a direct backend answers.
        return _choose(problem, "direct", max_memory)
    if not supported:
        reasons = "; ".join(f"{name}: {why}" for name, _, why in declined)
        error = ConvMemoryError if all(w.startswith("needs ") for _, _, w in declined
                                       if "not a" not in w) and declined else ValueError
        raise error(f"no backend can run this problem ({reasons})")
    name, cost, _ = supported[0]
    reason = "cheapest predicted" if len(supported) > 1 else "only backend that supports it"
    return Plan(_registry.get_backend(name), reason, cost, supported + declined, problem)
