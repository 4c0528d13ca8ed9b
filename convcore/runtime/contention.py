"""How many native threads one parallel call should start, decided the same way everywhere.

Three limits, applied by :func:`team_size` to the thread count a backend was given (a
fourth, per work key, is ``runtime.team_history``):

1. **The machine's share**: the CPUs this process may run on (``os.sched_getaffinity``) and
   a container's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), see
   :func:`cpu_budget`.
2. **Whether another thread pays** (scikit-learn's ``_use_threads_for_workload`` pattern):
   the work's one-thread time over the team, plus the measured cost of starting and joining
   the team (:func:`dispatch_seconds`), must beat one thread.
3. **Whether the cores are free now.** A parallel region ends when its last thread ends;
   when another process holds a core, a team thread waits for a scheduler time slice
   (4-16 ms here) and the whole call with it, and OpenMP's closing barrier waits for a
   descheduled thread even when the others took all the work. Measured on 2 cores with one
   CPU-bound competitor: 1024^2 k7 took 4.0 ms on two threads against 0.8 ms on one.
   So the team is sized to the cores other processes leave free, read two ways:

   - the *CPU signal*: every ``SAMPLE_SECONDS`` at most, the busy time of our CPUs in
     ``/proc/stat`` (steal included) minus this process's own CPU time gives how many cores
     others used over the last ``WINDOW_SECONDS``; an extra thread needs ``FREE_CORE`` of a
     core, free through every reading of the last ``CALM_SECONDS``. (``/proc/stat`` counts
     in 10 ms ticks: over one 50 ms interval a quiet machine read 0.0-0.5 cores used by
     others, enough to keep calls on one thread for seconds at a time; over 250 ms the
     error is a fifth of that.) The call that finds a reading due takes it, so it is kept
     cheap and rare: in a pipeline under load (1 ms of Python between calls) opening and
     parsing the file took 60-150 us, twice a whole 256^2 k5 call, and with a reading every
     50 ms such calls were 2-3% of all, the p99 of that pipeline.
   - the *stall rule*: ``STALL_STRIKES`` parallel calls in a row that each took ``STALL_RATIO``
     times (and ``STALL_SECONDS`` more than) the best time seen for the same work on the same
     team mark the machine contended for ``HOLD_SECONDS``: calls run on one thread, then
     probe with more again. (One slow call is not enough, and calls in the first
     ``WARM_SECONDS`` after ``COLD_GAP_SECONDS`` without any call do not count: after an idle
     gap the VM runs thread-pool code slowly while it wakes its threads, and a whole second
     on one thread would follow. Measured: 2048^2 k7 after 1.2 s idle, 5.1 ms against its
     best 1.7 ms.)
     It catches what the CPU signal is too slow to see (a competitor that just started).
     Where the signal can be read, a slow call counts only while it shows others using at
     least ``STALL_OTHERS`` of a core: on a quiet VM, a hiccup of the host slowed two calls
     in a row and held the next second on one thread (1.7x slower) with nobody to yield to.

``CONVCORE_ADAPTIVE_THREADS=0`` (or ``set_adaptive(False)``) turns the third limit (and
``runtime.team_history``) off: the team is then what the thread setting says whenever the
work pays for it.
"""

import collections
import math
import os
import threading
import time

from convcore.runtime.tables import BoundedTable

SAMPLE_SECONDS = 0.25
WINDOW_SECONDS = 0.25
STALL_OTHERS = 0.25
FREE_CORE = 0.75
STALL_RATIO = 2.0
STALL_SECONDS = 1.5e-3
STALL_STRIKES = 2
COLD_GAP_SECONDS = 0.1
WARM_SECONDS = 0.05
HOLD_SECONDS = 1.0
CALM_SECONDS = 1.0
# Before the measurement (and where it cannot run), and the least it may find: what a second
# thread costs a call after a millisecond of other work. An empty region times only the
# team's wake-up (1 us on the 2-core AVX2 VM, quiet: its second thread then looked worth it
# for any work); a real call's second thread also splits the work and starts on a cold
# cache: 256^2 k3 float32 ran 105 us on one thread and 113 us on two there, 512^2 k3 308 and
# 196 us (25th percentiles, 1 ms of Python between calls), a break-even near 40 us.
DEFAULT_DISPATCH_SECONDS = 40e-6
DISPATCH_RETRY_SECONDS = 10.0

_lock = threading.Lock()
_state = {"budget": None, "dispatch": None, "dispatch_retry": 0.0, "adaptive": None,
          "stalled_until": 0.0, "strikes": 0, "last_end": -math.inf, "warm_from": -math.inf,
          "peak": (0.0, -math.inf)}
_now = time.monotonic
_best = BoundedTable(1024)


# --- 1. the machine's share ---------------------------------------------------------------

def cpu_budget():
    """CPUs this process may use: its affinity mask, capped by a container's CPU quota.

    Returns
    -------
    int
        At least 1. Read once per process (:func:`reset` reads again).

    Examples
    --------
    >>> from convcore.runtime import contention as _contention
    >>> 1 <= _contention.cpu_budget() <= (os.cpu_count() or 1)
    True
    """
    budget = _state["budget"]
    if budget is None:
        budget = _state["budget"] = max(1, min(_affinity_count(), _cgroup_cpus() or math.inf))
    return budget


def _affinity_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _cgroup_cpus(root="/sys/fs/cgroup"):
    """CPUs allowed by the cgroup quota (rounded up), or None without a quota.

    cgroup v2: ``cpu.max`` holds "quota period" or "max period"; v1:
    ``cpu/cpu.cfs_quota_us`` (-1 for none) and ``cpu/cpu.cfs_period_us``.
    """
    def read(path):
        try:
            with open(os.path.join(root, path)) as f:
                return f.read().split()
        except (OSError, ValueError):
            return None

    v2 = read("cpu.max")
    if v2 and len(v2) == 2:
        quota, period = v2
    else:
        quota, period = (read("cpu/cpu.cfs_quota_us") or [None])[0], \
            (read("cpu/cpu.cfs_period_us") or [None])[0]
    try:
        quota, period = int(quota), int(period)
    except (TypeError, ValueError):  # "max", or no file
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


# --- 2. is another thread worth it ----------------------------------------------------------

def dispatch_seconds():
    """Seconds that starting and joining one more thread costs a call (measured once).

    An empty OpenMP region is timed with one thread and with two, each after a short sleep
    (so the team has gone to sleep, as between the calls of a pipeline); the least
    difference of several tries is the wake-up on a free core, and a call's cost is at least
    ``DEFAULT_DISPATCH_SECONDS`` (what splitting real work costs). It is measured only while the
    machine is quiet (on a busy one the second thread waits for a core: 4 ms measured here
    with four other processes running, a cost of the moment that the contention limit
    handles); until then ``DEFAULT_DISPATCH_SECONDS`` stands in, and a later call tries again.
    """
    seconds = _state["dispatch"]
    if seconds is not None:
        return seconds
    now = _now()
    if now < _state["dispatch_retry"]:
        return DEFAULT_DISPATCH_SECONDS
    _state["dispatch_retry"] = now + DISPATCH_RETRY_SECONDS
    others = _signal.others() if _signal is not None else 0.0
    if others is None or others > 1 - FREE_CORE:
        return DEFAULT_DISPATCH_SECONDS
    seconds = _measure_dispatch()
    if seconds > 10 * DEFAULT_DISPATCH_SECONDS:
        return DEFAULT_DISPATCH_SECONDS  # load arrived while measuring: try again later
    # The empty region is the floor's lower bound, not a call's cost (see the default).
    _state["dispatch"] = max(seconds, DEFAULT_DISPATCH_SECONDS)
    return _state["dispatch"]


def _measure_dispatch(tries=7):
    try:
        from convcore._cy import team
    except ImportError:  # an uncompiled tree
        return DEFAULT_DISPATCH_SECONDS
    if not team.HAVE_OPENMP or cpu_budget() < 2:
        return DEFAULT_DISPATCH_SECONDS
    team.region(2)  # create the team's threads once
    best = {1: math.inf, 2: math.inf}
    for _ in range(tries):
        for n in (1, 2):
            time.sleep(2e-3)
            start = time.perf_counter()
            team.region(n)
            best[n] = min(best[n], time.perf_counter() - start)
    return max(best[2] - best[1], 1e-6)


def worth(wanted, serial_seconds):
    """Largest team of at most `wanted` whose last thread still saves more than it costs.

    With t the one-thread time and d the dispatch cost per extra thread, n threads take
    about t / n + (n - 1) d; the n-th thread pays while t / (n (n - 1)) > d.

    Examples
    --------
    >>> from convcore.runtime import contention as _contention
    >>> _contention.worth(8, 0.0)
    1
    >>> _contention.worth(2, 1.0)
    2
    """
    d = dispatch_seconds()
    n = max(1, wanted)
    while n > 1 and serial_seconds / (n * (n - 1)) <= d:
        n -= 1
    return n


# --- 3. are the cores free now ----------------------------------------------------------------

class CpuSignal:
    """Cores that other processes used on our CPUs over the last sampling interval.

    Parameters
    ----------
    cpus : iterable of int
        CPU numbers to watch (the affinity mask).
    stat_path : str
        ``/proc/stat`` or a stand-in (tests).
    own_seconds, clock : callables
        This process's CPU seconds, and a monotonic clock (tests pass fakes).
    """

    def __init__(self, cpus, stat_path="/proc/stat", own_seconds=time.process_time,
                 clock=time.monotonic, period=SAMPLE_SECONDS):
        cpus = sorted(cpus)
        self._names = {f"cpu{c}".encode() for c in cpus}
        self._lines = 2 + (cpus[-1] if cpus else 0)  # "cpu", cpu0 .. the highest of ours
        self._fd = None
        self._path = stat_path
        self._own = own_seconds
        self._clock = clock
        self._period = period
        self._tick = 1.0 / (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
        self._samples = collections.deque()  # (time, busy seconds of our CPUs, own seconds)
        self._others = None        # cores others used over the last window
        self._sampling = threading.Lock()

    def _busy_seconds(self):
        # One pread on a descriptor kept open (no path lookup per reading), and only the
        # first lines split: "cpu", then cpu0..cpuN in order.
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        text = os.pread(self._fd, 1 << 16, 0)
        busy = 0
        found = 0
        for line in text.split(b"\n", self._lines)[: self._lines]:
            fields = line.split(None, 9)
            if fields and fields[0] in self._names:
                found += 1
                # user nice system idle iowait irq softirq steal: all but idle and iowait
                values = [int(v) for v in fields[1:9]]
                busy += sum(values) - values[3] - values[4]
        if not found:
            raise OSError("no CPU of the affinity mask in " + self._path)
        return busy * self._tick

    def close(self):
        """Close the descriptor kept open (the next reading opens it again)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass

    def others(self):
        """Cores used by other processes lately, or None when it cannot be read.

        Re-reads at most once per `period`; between reads returns the last value. The
        value covers the samples of the last ``WINDOW_SECONDS`` (after an idle gap, the
        last interval, however long).
        """
        now = self._clock()
        samples = self._samples
        if samples and now - samples[-1][0] < self._period:
            return self._others
        if not self._sampling.acquire(blocking=False):
            return self._others  # another Python thread is reading it
        try:
            sample = (now, self._busy_seconds(), self._own())
            while len(samples) > 1 and now - samples[1][0] >= WINDOW_SECONDS:
                samples.popleft()
            if samples:
                first = samples[0]
                elapsed = sample[0] - first[0]
                used = (sample[1] - first[1]) - (sample[2] - first[2])
                self._others = max(0.0, used / elapsed)
            samples.append(sample)
        except (OSError, ValueError, IndexError):
            self._others = None
        finally:
            self._sampling.release()
        return self._others


def _make_signal():
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if not os.path.exists("/proc/stat"):
        return None
    signal = CpuSignal(cpus)
    signal.others()  # the first interval starts here
    return signal


_signal = _make_signal()


def adaptive():
    """Whether team sizes follow the contention signals (see the module docstring)."""
    value = _state["adaptive"]
    if value is None:
        value = _state["adaptive"] = os.environ.get("CONVCORE_ADAPTIVE_THREADS", "1").strip() \
            not in ("0", "false", "False", "no", "off")
    return value


def set_adaptive(on):
    """Turn the contention limit on or off for the whole process (benchmarks, tests)."""
    _state["adaptive"] = bool(on)


def free_cores():
    """Cores left for this process now: its budget minus what other processes used lately.

    "Lately" is the most they used in any sampling interval of the last ``CALM_SECONDS``:
    on a machine whose load comes and goes (other users' builds and tests), a call takes
    more threads only after a calm second, not in the first quiet 50 ms between two bursts.
    """
    budget = cpu_budget()
    now = _now()
    if now < _state["stalled_until"]:
        return 1.0
    others = _signal.others() if _signal is not None else None
    if others is None:
        return float(budget)
    peak, when = _state["peak"]
    if others >= peak or now - when > CALM_SECONDS:
        _state["peak"] = (others, now)
    else:
        others = peak
    return max(1.0, budget - others)


def team_size(wanted, serial_seconds=None):
    """Threads one parallel call should start, given the `wanted` count (the thread setting).

    Parameters
    ----------
    wanted : int
        The most the caller may use (``convcore.get_num_threads()``, or the plan's threads).
    serial_seconds : float, optional
        Predicted one-thread time of the work; without it, only the machine's share and its
        contention limit the team.

    Returns
    -------
    int
        Between 1 and `wanted`.

    Examples
    --------
    >>> from convcore.runtime import contention as _contention
    >>> _contention.team_size(1)
    1
    >>> 1 <= _contention.team_size(4, serial_seconds=1.0) <= 4
    True
    """
    n = min(wanted, cpu_budget())
    if n > 1 and serial_seconds is not None:
        n = worth(n, serial_seconds)
    if n > 1 and adaptive():
        n = max(1, min(n, int(free_cores() + (1 - FREE_CORE))))
    return max(1, n)


def observe(key, threads, seconds):
    """Record that work `key` took `seconds` on `threads` threads (the stall rule).

    The best time per (key, threads) is kept; ``STALL_STRIKES`` calls in a row far slower
    than theirs mark the machine contended for ``HOLD_SECONDS``.

    Returns
    -------
    bool
        Whether the call's time describes its work: named, and not among the first calls
        after an idle gap (``runtime.team_history`` keeps only those).
    """
    now = _now()
    if now - seconds - _state["last_end"] > COLD_GAP_SECONDS:
        _state["warm_from"] = now + WARM_SECONDS  # the first calls after an idle gap
    _state["last_end"] = now
    if key is None or now < _state["warm_from"]:
        return False
    if threads <= 1:
        return True
    slot = (key, threads)
    best = _best.get(slot)
    if best is None or seconds < best:
        _best.put(slot, seconds)
        return True
    if seconds > STALL_RATIO * best and seconds - best > STALL_SECONDS and adaptive() \
            and _others_present():
        _state["strikes"] += 1
        if _state["strikes"] >= STALL_STRIKES:
            _state["strikes"] = 0
            _state["stalled_until"] = _now() + HOLD_SECONDS
    else:
        _state["strikes"] = 0
    return True


def _others_present():
    """Whether other processes are using our CPUs (True where that cannot be read)."""
    if _signal is None:
        return True
    others = _signal.others()
    return others is None or others >= STALL_OTHERS


def reading():
    """What the signals say now (for benchmarks and bug reports)."""
    others = _signal.others() if _signal is not None else None
    stalled = max(0.0, _state["stalled_until"] - _now())
    return {"cpu_budget": cpu_budget(), "others": None if others is None else round(others, 2),
            "stalled_for": round(stalled, 3), "adaptive": adaptive(),
            "dispatch_us": round(1e6 * dispatch_seconds(), 1)}


def reset():
    """Forget the budget, the measurements and the stall state (tests)."""
    global _signal
    with _lock:
        _state.update(budget=None, dispatch=None, dispatch_retry=0.0, adaptive=None,
                      stalled_until=0.0, peak=(0.0, -math.inf))
        _best.clear()
        _signal = _make_signal()
