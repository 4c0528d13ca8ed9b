"""Context: the settings one call runs under, as one frozen value.

Backends never read convcore's process-wide or thread-local settings themselves: the engine
reads them once per call (threads, ``max_memory``, planner effort) and hands them, with the
call's ``backend_options``, to ``supports``, ``cost``, ``workspace`` and ``prepare``. Equal
settings give equal (and equally hashed) contexts, so a context is part of a plan's key
(docs/design.md, "The backend contract").
"""

import types

from convcore.runtime import options as _options
from convcore.runtime import threads as _threads
from convcore.runtime.options import PLAN_EFFORTS

_EMPTY = types.MappingProxyType({})


class Context:
    """The settings of one call (immutable, hashable).

    Attributes
    ----------
    threads : int
        Native threads the call may use (``convcore.get_num_threads()`` when it was made).
    max_memory : int
        Bytes the call may use for its result and workspace.
    plan : {'estimate', 'measure'}
        Planner effort for backends that plan (FFTW).
    backend_options : mapping
        The options the caller gave for the named backend (read-only); a backend checks
        them with ``Backend.check_options``.
    first_call : bool
        Whether one-off costs count in ``cost()`` (planning FFTW transforms of lengths not
        planned yet). The engine plans a call signature's first call with True and, when the
        signature comes again, plans it once more with False: a shape met once should not
        pay for planning it will never reuse, a shape met often should take what is fastest
        once planned (docs/design.md, "The fast path").

    Examples
    --------
    >>> from convcore import Context
    >>> ctx = Context(threads=2, max_memory=1 << 30, plan="estimate", backend_options={"rank": 1})
    >>> ctx.backend_options["rank"], ctx == Context(2, 1 << 30, "estimate", {"rank": 1})
    (1, True)
    """

    __slots__ = ("threads", "max_memory", "plan", "backend_options", "first_call", "_key",
                 "_hash")

    def __init__(self, threads, max_memory, plan="estimate", backend_options=None,
                 first_call=True):
        if plan not in PLAN_EFFORTS:
            raise ValueError(f"plan must be 'estimate' or 'measure', got {plan!r}")
        items = tuple(sorted(backend_options.items())) if backend_options else ()
        try:
            hash(items)
        except TypeError:
            raise TypeError("backend_options values must be hashable (numbers, strings, "
                            f"booleans, tuples), got {dict(items)!r}") from None
        options = types.MappingProxyType(dict(items)) if items else _EMPTY
        first_call = bool(first_call)
        for name, value in (("threads", int(threads)), ("max_memory", int(max_memory)),
                            ("plan", plan), ("backend_options", options),
                            ("first_call", first_call),
                            ("_key", (int(threads), int(max_memory), plan, items, first_call))):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_hash", hash(self._key))

    def __setattr__(self, name, value):
        raise AttributeError(f"Context is immutable: cannot set {name!r}")

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, Context) and self._key == other._key

    def replace(self, **changes):
        """A copy with some settings changed (e.g. ``threads=1``)."""
        fields = {"threads": self.threads, "max_memory": self.max_memory, "plan": self.plan,
                  "backend_options": dict(self.backend_options), "first_call": self.first_call}
        fields.update(changes)
        return Context(**fields)

    def __repr__(self):
        options = dict(self.backend_options)
        return (f"Context(threads={self.threads}, max_memory={self.max_memory}, "
                f"plan={self.plan!r}, backend_options={options}, first_call={self.first_call})")


def current_context(backend_options=None, plan=None, max_memory=None):
    """The context of a call made now, in this Python thread (settings read once here):
    the one place a Context is built from convcore's settings."""
    max_memory, plan = _options.current(max_memory, plan)
    threads = _threads.get_num_threads()
    if backend_options:
        return Context(threads, max_memory, plan, backend_options)
    # Contexts are immutable: the settings of the last calls give the same Context back
    # (building one, with its key and hash, took about 7 us of every call).
    key = (threads, max_memory, plan)
    ctx = _recent.get(key)
    if ctx is None:
        if len(_recent) >= 16:
            _recent.clear()
        ctx = _recent[key] = Context(threads, max_memory, plan)
    return ctx


_recent = {}
