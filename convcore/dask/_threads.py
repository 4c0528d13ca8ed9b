"""How many threads one task may use: its share of the place it runs in.

Dask runs several tasks at once, each on a thread of a worker (distributed) or of a local
pool (the threaded scheduler). A convcore call inside a task starts, by default, as many
native threads as the process may use (docs/design.md, "Threads"): two worker processes
on two cores would then run four. So every task runs its block under ``convcore.threads(n)``
(OpenMP teams and FFTW plans) and a BLAS limit of ``n``, where ``n`` is, in order:

- the caller's ``threads=`` argument;
- on a distributed worker: the CPUs this process may use divided by the task threads of
  every worker in the process, and no more than ``OMP_NUM_THREADS`` where it is set. Dask's
  nanny sets ``OMP_NUM_THREADS=1`` in every worker process it starts (its
  ``distributed.nanny.pre-spawn-environ``: one thread per task, the cores are shared out
  as workers x threads), so a worker process runs each task on one thread, as Dask
  intends; workers started in the client's process (``processes=False``) share the
  process's CPUs between all their threads;
- on the threaded scheduler: the CPUs over the threads of the pool the task runs in;
- in a process of Dask's multiprocessing scheduler (one process per core), or a thread
  that belongs to no pool we know: one;
- otherwise (the synchronous scheduler, in the main thread): convcore's own setting.
"""

import contextlib
import multiprocessing
import os
import sys
import threading

from convcore.runtime import contention as _contention
from convcore.runtime.threads import BlasLimit, _validate, get_num_threads, serial_blas
from convcore.runtime.threads import threads as convcore_threads

_blas_limits = {1: serial_blas}
_limits_lock = threading.Lock()


def check_threads(threads):
    """The caller's ``threads=``: None (the share) or a positive int."""
    return None if threads is None else _validate(threads, "threads")


def task_share():
    """Threads a task may use where it runs now (see the module docstring).

    Returns
    -------
    int
        At least 1.
    """
    cpus = _contention.cpu_budget()
    slots = _worker_slots()
    if slots is not None:
        share = cpus // slots
        limit = _environment_limit()
        return max(1, min(share, limit) if limit else share)
    pool = _local_pool_size()
    if pool is not None:
        return max(1, cpus // pool)
    if threading.current_thread() is not threading.main_thread():
        return 1
    if multiprocessing.parent_process() is not None:
        return 1
    return get_num_threads()


def _worker_slots():
    """Task threads of every distributed worker in this process, if this is a worker's
    task thread; else None."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker
    from distributed.worker import Worker

    try:
        get_worker()
    except ValueError:
        return None
    return sum(w.state.nthreads for w in list(Worker._instances)) or 1


def _environment_limit():
    raw = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        return max(1, int(raw))
    except ValueError:
        return None


def _local_pool_size():
    """Threads of the dask.threaded pool running the calling thread, if one does."""
    if "dask.threaded" not in sys.modules:
        return None
    import dask
    from dask import threaded

    me = threading.current_thread()
    candidates = [threaded.default_pool, dask.config.get("pool", None)]
    for by_thread in list(threaded.pools.values()):
        candidates.extend(by_thread.values())
    for pool in candidates:
        # A ThreadPoolExecutor names its threads "<its prefix>_<n>" (and adds a thread to
        # its _threads only after starting it: the first task may run before); its size
        # is _max_workers.
        prefix = getattr(pool, "_thread_name_prefix", None)
        if me in getattr(pool, "_threads", ()) or (prefix and me.name.startswith(prefix + "_")):
            return getattr(pool, "_max_workers", None) or 1
    return None


def _blas_limit(n):
    with _limits_lock:
        limit = _blas_limits.get(n)
        if limit is None:
            limit = _blas_limits[n] = BlasLimit(n)
        return limit


@contextlib.contextmanager
def task_threads(requested=None):
    """Run the body on the task's threads: ``convcore.threads(n)`` and BLAS pools held at
    ``n`` (``n``: `requested`, or :func:`task_share`). Yields ``n``."""
    n = requested if requested is not None else task_share()
    with convcore_threads(n), _blas_limit(n):
        yield n
