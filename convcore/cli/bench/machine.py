"""The facts a benchmark run is saved with, and which of them make two runs incomparable."""

import os
import time

from convcore.runtime.build import cpu_model

# Settings that change timings: two runs differing in one of these are not the same setting.
SETTINGS = ("cpu_model", "cpu_flags_hash", "cpu_count", "threads", "convcore", "numpy",
            "scipy", "pyfftw", "blas", "openmp", "compile_args", "portable_build", "env")
ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
               "CONVCORE_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _version(module):
    try:
        return __import__(module).__version__
    except Exception:
        return "not installed"


def probe(loops=300_000):
    """Seconds for a fixed pure-Python loop (median of 3): how fast one core is right now.

    Compared between two runs it tells a busier machine from slower code.
    """
    times = []
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(loops):
            total += i
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def parallel_probe(threads=None, rounds=5, size=1 << 21, repeats=4):
    """Seconds for every core hashing its own buffer at once (the best of `rounds`): what a
    parallel region of the benchmarks gets from the machine right now.

    One core's `probe` does not see another process taking a core of two (a core is left);
    this one does: all threads must finish, as in a parallel region, so its time grows by
    about ``(threads + others) / threads`` when others are runnable. The best of a few rounds
    drops a moment's noise, not a process that runs all along. ``hashlib`` releases the GIL.
    """
    import hashlib
    import threading

    threads = threads or os.cpu_count() or 1
    data = bytes(size)
    barrier = threading.Barrier(threads + 1)

    def work():
        barrier.wait()
        for _ in range(repeats):
            hashlib.sha256(data).digest()
        barrier.wait()

    best = None
    for _ in range(rounds):
        team = [threading.Thread(target=work) for _ in range(threads)]
        for thread in team:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        barrier.wait()
        seconds = time.perf_counter() - start
        for thread in team:
            thread.join()
        best = seconds if best is None else min(best, seconds)
    return best


def facts():
    """Machine and build facts for a saved run (a JSON-able dict)."""
    import hashlib

    import convcore
    from convcore.cli import config as _config

    model, flags = cpu_model()
    config = _config.config()
    return {
        "cpu_model": model,
        "cpu_flags": flags,
        "cpu_flags_hash": hashlib.sha1(flags.encode()).hexdigest()[:12],
        "cpu_count": os.cpu_count(),
        "threads": convcore.get_num_threads(),
        "convcore": convcore.__version__,
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "pyfftw": _version("pyfftw"),
        "cv2": _version("cv2"),
        "torch": _version("torch"),
        "blas": ", ".join(sorted(str(config["blas"]).split(", "))),  # load order varies
        "openmp": config["openmp"],
        "compile_args": config["compile_args"],
        "portable_build": config["portable_build"],
        "env": {name: os.environ.get(name) for name in ENVIRONMENT},
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "probe_seconds": probe(),
        "parallel_probe_seconds": parallel_probe(),
    }


def differences(old, new):
    """``[(setting, old value, new value)]`` for the settings that differ between runs."""
    return [(key, old.get(key), new.get(key)) for key in SETTINGS
            if old.get(key) != new.get(key)]


def cpu_snapshot():
    """``(wall seconds, busy CPU seconds of the whole machine, this process's CPU seconds
    including its waited-for children)``; busy is None where /proc/stat is missing."""
    busy = None
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (sum(values[:8]) - values[3] - values[4]) / ticks  # all but idle and iowait
    except (OSError, ValueError):
        pass
    own = os.times()
    return time.time(), busy, own.user + own.system + own.children_user + own.children_system


def other_load(start, end):
    """Share of all CPUs that other processes used between two snapshots (0..1), or None."""
    if start[1] is None or end[1] is None or end[0] <= start[0]:
        return None
    others = (end[1] - start[1]) - (end[2] - start[2])
    return max(0.0, others / ((end[0] - start[0]) * (os.cpu_count() or 1)))


def wait_snapshot():
    """``(wall seconds, {thread id: (CPU ns, runqueue wait ns)}, CPU pressure us)`` of this
    process: its threads' /proc schedstat and the machine's /proc/pressure/cpu 'some' total
    (None where missing)."""
    threads = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    cpu, wait = (int(v) for v in f.read().split()[:2])
                threads[tid] = (cpu, wait)
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    pressure = None
    try:
        with open("/proc/pressure/cpu") as f:
            pressure = int(f.readline().rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return time.time(), threads, pressure


def waited(start, end):
    """``(wait share, pressure share)`` between two `wait_snapshot` s: the share of this
    process's thread time spent runnable but waiting for a CPU (other processes had it), and
    the share of wall time some task of the machine waited for a CPU; None where unknown."""
    cpu = wait = 0
    for tid, (c1, w1) in end[1].items():
        c0, w0 = start[1].get(tid, (0, 0))
        cpu, wait = cpu + c1 - c0, wait + w1 - w0
    share = wait / (cpu + wait) if cpu + wait > 0 else None
    pressure = None
    if start[2] is not None and end[2] is not None and end[0] > start[0]:
        pressure = min(1.0, (end[2] - start[2]) / 1e6 / (end[0] - start[0]))
    return share, pressure
