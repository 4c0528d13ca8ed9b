"""How one row is timed, shared by the pytest-benchmark suite and the A/B worker.

On a shared 2-core VM two effects dominate (docs/design.md, "Performance notes"): other
libraries' thread pools keep spinning for ~0.1 s after a call, and code that was idle runs
slowly for a while. So every row gets an idle gap, then untimed calls until it is in its
steady state, then its own block of timed calls; rows of one group follow each other, so
their ratios come from neighbouring seconds of the same run.
"""

import contextlib
import subprocess
import sys
import time

from . import engine_modules

IDLE_GAP = 0.2
BUDGET = {"quick": 0.4, "full": 1.5}  # seconds of timed calls per row


def idle_gap(seconds=IDLE_GAP):
    """Let the previous row's thread pools fall asleep."""
    time.sleep(seconds)


def warm_up(call, seconds=0.1, min_calls=2):
    """Call `call` untimed for at least `seconds` and `min_calls` times; return the last
    call's duration (seconds) as an estimate of one call."""
    start = time.perf_counter()
    calls, last = 0, 0.0
    while calls < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        call()
        last = time.perf_counter() - t0
        calls += 1
    return last


def median_time(call, repeats):
    """Median seconds of `repeats` timed calls of `call` (no warm-up: see `warm_up`)."""
    times = block_times(call, repeats)
    return sorted(times)[len(times) // 2]


def calls_per_sample(seconds_per_call):
    """Calls per timed sample: 1 from a millisecond up, else enough for about 2 ms (tiny calls
    are looped, so the timer's resolution and its own cost do not matter)."""
    if seconds_per_call >= 1e-3:
        return 1
    return max(1, int(2e-3 / max(seconds_per_call, 1e-8)))


def rounds_for(seconds_per_call, profile, min_rounds=5, max_rounds=60):
    """``(rounds, iterations)`` filling the profile's budget: tiny calls are looped
    (``iterations`` calls per timed round, ``calls_per_sample``)."""
    iterations = calls_per_sample(seconds_per_call)
    per_round = seconds_per_call * iterations
    rounds = int(BUDGET[profile] / max(per_round, 1e-9))
    if seconds_per_call > 0.5:
        min_rounds = 3
    return max(min_rounds, min(max_rounds, rounds)), iterations


def python_work(seconds=1e-3):
    """The pure-Python work a pipeline does between two calls (the busy group)."""
    until = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < until:
        total += 1
    return None


@contextlib.contextmanager
def row_conditions(problem):
    """The conditions one row is timed under.

    The busy family measures what a pipeline gets: convcore sizes its thread teams to the
    load (``convcore.runtime.contention``), and the "loaded" rows run beside one CPU-bound competitor. Every
    other row measures the code: its teams follow the thread setting alone. Left adaptive,
    a row timed a moment after a burst of other work ran on one thread, and reruns of
    unchanged code differed by up to 2x row by row (2-core VM), which a regression gate
    cannot tell from slower code; a machine that is busy all along is refused by the
    comparison instead (``convcore.cli.bench.compare``).
    """
    _contention = engine_modules.module("convcore.runtime.contention")

    busy = problem.family == "busy"
    was = _contention.adaptive()
    _contention.set_adaptive(busy)
    try:
        with competitor() if problem.p.get("load") == "loaded" else contextlib.nullcontext():
            yield
    finally:
        _contention.set_adaptive(was)


@contextlib.contextmanager
def competitor(settle=0.1):
    """One other CPU-bound process for the duration of the block (started `settle` seconds
    before it), killed after it.

    After the kill, waits (up to `CALM_LIMIT` seconds) until convcore's contention limit
    sees the cores free again: it remembers load for a calm second, and a "quiet" row timed
    inside that second measured one thread where a quiet machine gives two (1024^2 k7:
    0.89 ms against 0.83 ms for ``threads(1)``).
    """
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)  # let it get scheduled and spinning
        yield process
    finally:
        process.kill()
        process.wait()
        until_cores_free()


CALM_LIMIT = 3.0


def until_cores_free(limit=CALM_LIMIT, step=0.05):
    """Wait until convcore's contention limit would give a call every core of its budget
    (or `limit` seconds pass, on a machine someone else keeps busy); return the seconds
    waited."""
    _contention = engine_modules.module("convcore.runtime.contention")

    start = time.perf_counter()
    budget = _contention.cpu_budget()
    while time.perf_counter() - start < limit:
        if not _contention.adaptive() or _contention.team_size(budget) >= budget:
            break
        time.sleep(step)
    return time.perf_counter() - start


def block_times(call, rounds, iterations=1, setup=None, clock=time.perf_counter):
    """Per-call seconds of `rounds` timed rounds of `iterations` calls each, read on `clock`
    (``time.thread_time`` for `CPU_TIME`)."""
    times = []
    for _ in range(rounds):
        if setup is not None:
            setup()
        start = clock()
        for _ in range(iterations):
            call()
        times.append((clock() - start) / iterations)
    return times


# The calling thread's CPU time: on a machine loaded beyond its cores, wall time measures
# the scheduler (one-thread rows took 3-10x their quiet time, unevenly, row by row), while
# the CPU time of work done on the calling thread does not wait for a core. Honest only for
# rows that run on the calling thread alone (``row@1`` with BLAS limited to one thread).
CPU_TIME = time.thread_time
