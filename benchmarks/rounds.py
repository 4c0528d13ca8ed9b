"""Interleaved rounds on groups of the grid: the ratios a claim quotes, in one process.

pytest-benchmark times a row once, in one block. On a shared machine a ratio is honest when
the rows it compares alternate (A B C, A B C, ...) and medians over rounds are compared;
this module does that for any group of the grid, and the A/B worker uses it for each build.

Run (from the repository root)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.rounds \\
        signal2d-n1024-k7-float32-same --rounds 7 [--rows openmp,cv2.filter2D]
"""

import argparse
import json
import sys

import numpy as np

from . import contenders, grid, timing


def measure(problem, rows, rounds=5, calls=5, check=True, raw=False):
    """``{row: [per-round median seconds]}`` with the rows' blocks interleaved (with `raw`,
    every timed call's seconds instead).

    Rows that cannot run are left out and returned in ``{row: reason}`` as a second value.
    Each block: an idle gap, untimed calls to the steady state, `calls` timed calls.
    """
    runnable, unavailable = {}, {}
    for row in rows:
        try:
            runnable[row] = contenders.make_call(problem, row)
        except contenders.Unavailable as why:
            unavailable[row] = str(why)
    if check:
        reference = grid.reference(problem)
        for call in runnable.values():
            contenders.check(problem, call(), reference)
    samples = {row: [] for row in runnable}
    with timing.row_conditions(problem):
        _interleave(runnable, samples, rounds, calls, raw)
    return samples, unavailable


def _interleave(runnable, samples, rounds, calls, raw):
    for _ in range(rounds):
        for row, call in runnable.items():
            timing.idle_gap(0.15)
            seconds = timing.warm_up(call)
            reps, iterations = timing.rounds_for(seconds, "quick", min_rounds=3,
                                                 max_rounds=calls)
            times = timing.block_times(call, reps, iterations)
            if raw:
                samples[row].extend(times)
            else:
                samples[row].append(float(np.median(times)))


def select(patterns, profile=grid.FULL):
    """Problems of `profile` whose group contains any of `patterns` (all when empty)."""
    return [p for p in grid.problems(profile)
            if not patterns or any(pattern in p.group for pattern in patterns)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="substrings of group names (default: all)")
    parser.add_argument("--profile", choices=[grid.QUICK, grid.FULL], default=grid.QUICK)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", default="", help="comma-separated rows (default: all)")
    parser.add_argument("--json", help="also write {group: {row: samples}} here")
    args = parser.parse_args(argv)
    wanted = [r for r in args.rows.split(",") if r]
    results = {}
    for problem in select(args.groups, args.profile):
        if problem.family == "busy":
            continue  # its load is part of the problem: pytest-benchmark's group measures it
        rows = [r for r in contenders.rows(problem) if not wanted or r in wanted]
        samples, unavailable = measure(problem, rows, args.rounds)
        results[problem.group] = samples
        medians = {row: float(np.median(v)) for row, v in samples.items()}
        best = min(medians.values()) if medians else None
        print(f"{problem.group} ({args.rounds} interleaved rounds, medians)")
        for row, t in sorted(medians.items(), key=lambda item: item[1]):
            spread = np.percentile(samples[row], [25, 75])
            print(f"  {row:<26}{t * 1e3:10.3f} ms  IQR {spread[0] * 1e3:.3f}-"
                  f"{spread[1] * 1e3:.3f}  x{t / best:.2f} of fastest")
        for row, why in unavailable.items():
            print(f"  {row:<26}{why}")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
