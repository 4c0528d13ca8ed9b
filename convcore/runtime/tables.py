"""Bounded memo tables and the shared worker threads: the engine's caches in one place.

Every memo of the engine (plans, the fast path's call signatures, a plan's kernels, the
contention signal's best times) is a :class:`BoundedTable`: reads are a plain dictionary
lookup (the fast path pays nothing for the bound), and a full table drops its *oldest*
entry, one at a time, never the whole table (a loop over more signatures than fit kept
re-planning everything when a full table was emptied wholesale).
"""

import threading
from concurrent.futures import ThreadPoolExecutor


class BoundedTable:
    """A dictionary of at most `size` entries; inserting into a full one evicts the oldest.

    ``get`` is safe without a lock (one dict lookup); ``put``, ``pop`` and ``clear`` take
    the table's lock, so concurrent writers never grow it past `size`.

    Examples
    --------
    >>> t = BoundedTable(2)
    >>> t.put("a", 1); t.put("b", 2); t.put("c", 3)
    >>> t.get("a"), t.get("c"), len(t)
    (None, 3, 2)
    """

    __slots__ = ("size", "_items", "_lock", "get")

    def __init__(self, size):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._items = {}
        self._lock = threading.Lock()
        self.get = self._items.get

    def put(self, key, value):
        """Store `value` under `key`, evicting the oldest entries beyond `size`."""
        with self._lock:
            items = self._items
            items.pop(key, None)
            while len(items) >= self.size:
                del items[next(iter(items))]
            items[key] = value

    def clear(self):
        with self._lock:
            self._items.clear()

    def __len__(self):
        return len(self._items)

    def __contains__(self, key):
        return key in self._items


_executors = {}
_executors_lock = threading.Lock()


def shared_executor(threads):
    """The process's pool of `threads` worker threads (one pool per size, kept for reuse).

    nn's batch chunks and fft's overlap-add chunks run on it: one set of idle threads
    instead of one per module, and each pool made once (starting threads for every call
    cost more than the small calls themselves). A task running on a pool must not wait for
    another task of the same pool (nn's chunks and fft's chunks never call each other)."""
    with _executors_lock:
        pool = _executors.get(threads)
        if pool is None:
            pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convcore")
            _executors[threads] = pool
        return pool
