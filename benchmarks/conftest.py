"""Shared pieces of the benchmark suite (grid in ../shared/bench-grid.md).

Run with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks``.
Every benchmark asserts its result against a float64 reference, so a fast wrong answer fails.
"""

import time

import numpy as np
import pytest


def seeded(shape, dtype="float32", seed=0):
    """Seeded standard-normal data, as the grid prescribes."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close_to(result, reference, dtype):
    """Relative max error against a float64 reference, loose enough for float32 sums."""
    scale = np.abs(reference).max() or 1.0
    tolerance = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9
    error = np.abs(np.asarray(result, dtype=np.complex128) - reference).max() / scale
    assert error <= tolerance, f"relative error {error:.3g} over {tolerance}"


def warm_up(call, seconds=0.1, min_calls=2):
    """Call `call` untimed for at least `seconds` (and `min_calls` times) before timing it.

    On these VMs code that was idle runs slowly for a while: after a 0.15 s gap, the next
    ~50 ms of fft calls (whose worker threads sleep between chunks) took 8 ms instead of
    4.6 ms, and the first calls of every contender are 2-10x slower (cold caches, a sleeping
    core that the host has to schedule back). Interleaved blocks with idle gaps are needed
    against spinning thread pools (PERF-NOTES.md); this puts every contender back in its
    steady state before its block is timed.
    """
    start = time.perf_counter()
    calls = 0
    while calls < min_calls or time.perf_counter() - start < seconds:
        call()
        calls += 1


def median_time(call, repeats):
    """Median seconds of `repeats` timed calls of `call` (no warm-up: see `warm_up`)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


@pytest.fixture
def idle_gap():
    """Let other libraries' thread pools go to sleep before timing (PERF-NOTES.md)."""
    time.sleep(0.25)
