"""Values a backend derives from a problem, kept exactly as long as the problem.

Problems are immutable and a plan keeps its problem, so what ``supports``, ``cost``,
``workspace`` and ``prepare`` each need (a transform layout, a kernel's factorization) is
computed once per (problem, key) and dropped with the plan: no cache of its own to size.
"""

import threading
import weakref

_MISSING = object()


class ProblemMemo:
    """``memo.get(problem, key, compute)``: ``compute()`` once per problem object and key."""

    def __init__(self):
        self._values = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, problem, key, compute):
        with self._lock:
            found = self._values.get(problem, {}).get(key, _MISSING)
        if found is _MISSING:
            found = compute()
            with self._lock:
                self._values.setdefault(problem, {})[key] = found
        return found
