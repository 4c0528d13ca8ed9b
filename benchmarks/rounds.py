"""Interleaved rounds on groups of the grid: the ratios a claim quotes, in one process.

pytest-benchmark times a row once, in one block. On a shared machine a ratio is honest when
the rows it compares alternate (A B C, A B C, ...) and medians over rounds are compared;
this module does that for any group of the grid, and the A/B worker uses it for each build.

Run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convcore bench rounds \\
        signal2d-n1024-k7-float32-same --rounds 7 [--rows openmp,cv2.filter2D] [--markdown]
"""

import argparse
import json
import sys
import time

import numpy as np

from . import contenders, grid, stamp, timing


def measure(problem, rows, rounds=5, calls=5, check=True, raw=False, clock=None):
    """``{row: [per-round median seconds]}`` with the rows' blocks interleaved (with `raw`,
    every timed call's seconds instead).

    Rows that cannot run are left out and returned in ``{row: reason}`` as a second value.
    Each block: an idle gap, untimed calls to the steady state, `calls` timed calls (on
    `clock`: wall time by default, ``timing.CPU_TIME`` for one-thread rows on a loaded
    machine).
    """
    runnable, unavailable = {}, {}
    for row in rows:
        try:
            runnable[row] = contenders.make_call(problem, row)
        except contenders.Unavailable as why:
            unavailable[row] = str(why)
    if check:
        reference = grid.reference(problem)
        for row, call in list(runnable.items()):
            try:
                result = call()
            except (TypeError, ValueError) as err:  # a row named for a problem it cannot take
                unavailable[row] = f"fails: {err}"
                del runnable[row]
                continue
            contenders.check(problem, result, reference)
    samples = {row: [] for row in runnable}
    with timing.row_conditions(problem):
        _interleave(runnable, samples, rounds, calls, raw, clock or time.perf_counter)
    return samples, unavailable


def _interleave(runnable, samples, rounds, calls, raw, clock):
    for _ in range(rounds):
        for row, call in runnable.items():
            timing.idle_gap(0.15)
            seconds = timing.warm_up(call)
            reps, iterations = timing.rounds_for(seconds, "quick", min_rounds=3,
                                                 max_rounds=calls)
            times = timing.block_times(call, reps, iterations, clock=clock)
            if raw:
                samples[row].extend(times)
            else:
                samples[row].append(float(np.median(times)))


def select(patterns, profile=grid.FULL):
    """Problems of `profile` whose group contains any of `patterns` (all when empty)."""
    return [p for p in grid.problems(profile)
            if not patterns or any(pattern in p.group for pattern in patterns)]


def main(argv=None, prog=None):
    """``convcore bench rounds``: interleaved rounds on the groups named, medians printed."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="substrings of group names (default: all)")
    parser.add_argument("--profile", choices=[grid.QUICK, grid.FULL], default=grid.QUICK)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", default="", help="comma-separated rows (default: the "
                        "group's; any contender of contenders.py may be named)")
    parser.add_argument("--json", help="also write {group: {row: samples}} here")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time the calling thread's CPU time, not wall time: for rows "
                             "on one thread (row@1) on a loaded machine; sets BLAS and "
                             "torch to one thread")
    parser.add_argument("--markdown", action="store_true",
                        help="print one Markdown table for docs/ (a line per group, a column "
                             "per row) under the stamp line")
    args = parser.parse_args(argv)
    wanted = [r for r in args.rows.split(",") if r]
    clock = None
    if args.cpu_time:
        clock = timing.CPU_TIME
        one_thread_libraries()
    print(stamp.line() + (" Times: CPU time of the calling thread." if args.cpu_time else ""),
          flush=True)
    results, missing = {}, {}
    for problem in select(args.groups, args.profile):
        if problem.family == "busy":
            continue  # its load is part of the problem: pytest-benchmark's group measures it
        own = contenders.rows(problem)
        # a row named but not in the group: any contender contenders.py can call (e.g.
        # scipy.signal.convolve2d, SciPy's direct loop, beside naive)
        rows = [r for r in own if not wanted or r in wanted] + [r for r in wanted
                                                                if r not in own]
        samples, unavailable = measure(problem, rows, args.rounds, clock=clock)
        results[problem.group], missing[problem.group] = samples, unavailable
        if args.markdown:
            print(f"measured {problem.group}", file=sys.stderr, flush=True)
        else:
            print(text(problem.group, samples, unavailable, args.rounds), flush=True)
    if args.markdown:
        print(markdown(results, missing, wanted, args.rounds))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    return 0


def one_thread_libraries():
    """Keep BLAS and torch on the calling thread, so its CPU time is the whole call's."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _medians(samples):
    medians = {row: float(np.median(v)) for row, v in samples.items()}
    return sorted(medians.items(), key=lambda item: item[1])


def text(group, samples, unavailable, rounds):
    """The terminal table of one group: medians, IQR, ratio to the fastest row."""
    ordered = _medians(samples)
    lines = [f"{group} ({rounds} interleaved rounds, medians)"]
    for row, t in ordered:
        spread = np.percentile(samples[row], [25, 75])
        lines.append(f"  {row:<26}{t * 1e3:10.3f} ms  IQR {spread[0] * 1e3:.3f}-"
                     f"{spread[1] * 1e3:.3f}  x{t / ordered[0][1]:.2f} of fastest")
    lines += [f"  {row:<26}{why}" for row, why in unavailable.items()]
    return "\n".join(lines)


def markdown(results, missing, wanted, rounds):
    """One Markdown table for a docs page: a line per group, a column per row (median ms),
    each row's time over the first row's in brackets (above 1: the first row is faster)."""
    columns = wanted or list(dict.fromkeys(row for samples in results.values()
                                           for row in samples))
    if not results or not columns:
        return "nothing was measured"
    lines = [f"{rounds} interleaved rounds; median ms (time over {columns[0]}'s, from the "
             "same rounds)", "",
             "| group | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for group, samples in results.items():
        medians = {row: float(np.median(v)) for row, v in samples.items()}
        first = medians.get(columns[0])
        cells = []
        for row in columns:
            if row not in medians:
                why = missing[group].get(row, "not a row of this group")
                cells.append("n/a" if len(why) > 40 else why)
            elif row == columns[0] or first is None:
                cells.append(f"{medians[row] * 1e3:.3g}")
            else:
                cells.append(f"{medians[row] * 1e3:.3g} ({medians[row] / first:.2f}x)")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
