"""The one thread setting of convcore.

Every parallel part of the engine reads :func:`get_num_threads`: OpenMP ``num_threads`` in the
Cython loops (taken from one process-wide budget, :func:`native_threads`), pyFFTW's
``threads``, and the BLAS pool (through threadpoolctl). The value comes from, in order: an
enclosing :func:`threads` block in the calling Python thread, the last :func:`set_num_threads`,
the ``CONVCORE_NUM_THREADS`` environment variable, the CPUs this process may use
(``_contention.cpu_budget``: its affinity mask and a container's CPU quota).

That count is an upper bound: how many threads one parallel call actually starts is
``_contention.team_size`` (does the work pay for another thread, are the cores free now).
"""

import contextlib
import os
import sys
import threading
import time

from convcore.runtime import contention as _contention
from convcore.runtime import team_history as _history
from convcore.runtime.invalidation import settings_changed

_local = threading.local()
_process_default = None


def _validate(n, name="n"):
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be a positive int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name} must be a positive int, got {n}")
    return n


def _from_environment():
    raw = os.environ.get("CONVCORE_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return _contention.cpu_budget()
    try:
        return _validate(int(raw), "CONVCORE_NUM_THREADS")
    except (TypeError, ValueError):
        raise ValueError(f"CONVCORE_NUM_THREADS must be a positive integer, got {raw!r}") from None


def get_num_threads():
    """Return the number of threads convcore's native code will use in this thread.

    Returns
    -------
    int
        Threads for OpenMP loops, FFTW and BLAS calls made by convcore.
    """
    n = getattr(_local, "override", None)
    if n is not None:
        return n
    global _process_default
    if _process_default is None:
        _process_default = _from_environment()
    return _process_default


def set_num_threads(n):
    """Set the process-wide number of threads convcore uses.

    Parameters
    ----------
    n : int
        A positive number of threads.

    Raises
    ------
    TypeError, ValueError
        If `n` is not a positive int.

    Examples
    --------
    >>> import convcore
    >>> convcore.set_num_threads(1)
    >>> convcore.get_num_threads()
    1
    """
    global _process_default
    _process_default = _validate(n)
    settings_changed()  # plans memoized under the old count may no longer be right


@contextlib.contextmanager
def threads(n):
    """Use `n` threads inside a ``with`` block, in the calling Python thread only.

    Parameters
    ----------
    n : int
        A positive number of threads.

    Examples
    --------
    >>> import convcore, numpy as np
    >>> with convcore.threads(1):
    ...     convcore.get_num_threads()
    1
    """
    _validate(n)
    previous = getattr(_local, "override", None)
    _local.override = n
    try:
        yield n
    finally:
        _local.override = previous


class _NativeThreadBudget:
    """Native threads shared by every Python thread that runs a parallel loop at once.

    A call takes what it asks for when nothing else runs, else what is free (at least one,
    waiting until one is), so eight Python threads calling together on two cores run two
    native threads in all instead of sixteen fighting for the cores.
    """

    def __init__(self, size):
        self._size = size
        self._free = size
        self._cond = threading.Condition()

    def acquire(self, wanted):
        with self._cond:
            while self._free < 1:
                self._cond.wait()
            taken = wanted if self._free == self._size else min(wanted, self._free)
            self._free -= taken
            return taken

    def release(self, taken):
        with self._cond:
            self._free += taken
            self._cond.notify_all()


_budget = _NativeThreadBudget(_contention.cpu_budget())


@contextlib.contextmanager
def native_threads(wanted, key=None, follow_load=True):
    """Reserve up to `wanted` native threads for one parallel loop; yields how many to use.

    Every OpenMP region of the engine runs inside this, so Python threads calling at once
    share the machine's cores instead of multiplying the thread count. With a `key` naming
    the work (same key, same work), the call's time feeds the stall rule of
    ``_contention.observe``: a parallel call far slower than its best marks the machine
    contended, and the team runs on one thread while one thread has lately been faster for
    this work (``runtime.team_history``). ``follow_load=False``: the caller runs `wanted`
    threads whatever it is given (a plan whose bits depend on its thread count), so that
    rule must not cut the team.
    """
    wanted = max(1, wanted)
    if key is not None and wanted > 1 and follow_load:
        wanted = _history.team_for(key, wanted)
    taken = _budget.acquire(wanted)
    start = time.perf_counter()
    try:
        yield taken
    finally:
        _budget.release(taken)
    if key is not None:
        seconds = time.perf_counter() - start
        if _contention.observe(key, taken, seconds):
            _history.record(key, taken, seconds)


class BlasLimit:
    """While inside, every BLAS pool runs at most `threads` threads (``serial_blas``: one).

    ``serial_blas``: while our native threads each call GEMM (im2col's blocks, the CNN
    layers' batch and the stride-1 backward), the parallelism is ours, so a BLAS pool of its
    own would only fight it for the cores. ``convcore.dask`` holds a task's share.

    threadpoolctl's ``threadpool_limits`` rescans the loaded libraries on each use
    (milliseconds). Here the scan is redone only when modules were imported since the last
    one: a library that arrives later comes with an extension module (OpenCV bundles an
    OpenBLAS of its own), and "every pool" must still mean every pool. A thread count is set
    only when it is above the limit. Nested or concurrent calls share one limit: the last to leave
    restores what the first found.
    """

    def __init__(self, threads=1):
        self._threads = _validate(threads, "threads")
        self._lock = threading.Lock()
        self._users = 0
        self._restore = []  # (library, its thread count before) of the outermost entry
        self._libraries = []
        self._modules_at_scan = -1

    def _blas_libraries(self):
        if len(sys.modules) != self._modules_at_scan:
            from threadpoolctl import ThreadpoolController

            self._modules_at_scan = len(sys.modules)
            self._libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        return self._libraries

    def __enter__(self):
        with self._lock:
            if self._users == 0:
                self._restore = [(lib, lib.num_threads) for lib in self._blas_libraries()]
                for lib, n in self._restore:
                    if n > self._threads:
                        _set_threads(lib, self._threads)
            self._users += 1

    def __exit__(self, *exc):
        with self._lock:
            self._users -= 1
            if self._users == 0:
                for lib, n in self._restore:
                    if n > self._threads:
                        _set_threads(lib, n)


def _set_threads(lib, n):
    """Set a BLAS pool's threads from any Python thread.

    threadpoolctl 3.8 lets only one Python thread (the first that set it, while it lives)
    change a pthreads OpenBLAS's threads; from any other the call silently does nothing,
    so a limit taken in a worker thread (a dask task, a caller's thread pool) after the
    main thread once took one would not hold. Entries here are already serialized and
    counted (the lock, the users), so the library's own setter is called directly.
    """
    getattr(lib, "_real_set_num_threads", lib.set_num_threads)(n)


serial_blas = BlasLimit(1)
