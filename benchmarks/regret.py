"""auto's regret: its time over the fastest named backend's, on every cell of the regret family.

The figure docs/design.md ("auto's regret") quotes and issue #30 sets targets for. Per cell:
every backend and ``auto`` on one thread (``row@1``), each row's calls timed on the calling
thread's CPU time, in rounds that alternate the rows in short blocks with no idle gaps, the
order rotated each round. A round's regret is auto's least time in its block over the least of
the fastest backend's block; the cell's regret is the median over rounds.

Why so, on a shared 2-core VM: one block per row after an idle gap (``convcore bench rounds``)
put single cells at 0.66-1.79 from run to run where auto and its backend, timed in alternation,
were within 3% (docs/design.md). A slow block of one row moves one round's ratio, not the
median; neighbouring blocks share the minute's conditions.

Run::

    convcore bench regret [--profile full] [--rounds 5] [--json out.json] [cells...]
"""

import argparse
import json

import numpy as np

from . import contenders, grid, stamp, timing

BLOCK_SECONDS = 0.02  # timed calls per row per round
TOO_SLOW = 10.0  # a backend this many times slower than the fastest one call is not timed


def measure_cell(problem, rounds=5, block_seconds=BLOCK_SECONDS):
    """``(per_round_least, notes)`` for `problem`: ``{row: [least seconds per round]}`` for
    auto@1 and every backend@1 worth timing, and ``{row: why not timed}``."""
    calls, notes = {}, {}
    reference = grid.reference(problem)
    for name in contenders.backends() + ["auto"]:
        row = f"{name}@1"
        try:
            call = contenders.make_call(problem, row)
            contenders.check(problem, call(), reference)
        except contenders.Unavailable as why:
            notes[row] = str(why)
            continue
        calls[row] = call
    one_call = {row: timing.warm_up(call, seconds=0.05, min_calls=8)  # past auto's trial
                for row, call in calls.items()}
    fastest = min(t for row, t in one_call.items() if not row.startswith("auto"))
    for row, t in one_call.items():
        if not row.startswith("auto") and t > TOO_SLOW * fastest:
            notes[row] = f"not timed: one call {t / fastest:.0f}x the fastest backend's"
            del calls[row]
    plan = {row: _block_shape(one_call[row], block_seconds) for row in calls}
    least = {row: [] for row in calls}
    order = list(calls)
    for i in range(rounds):
        for row in order[i % len(order):] + order[:i % len(order)]:
            least[row].append(min(timing.block_times(calls[row], *plan[row],
                                                     clock=timing.CPU_TIME)))
    return least, notes


def _block_shape(seconds_per_call, block_seconds):
    """``(timed samples, calls per sample)`` filling about `block_seconds`."""
    iterations = timing.calls_per_sample(seconds_per_call)
    samples = int(block_seconds / max(seconds_per_call * iterations, 1e-9))
    return max(3, min(20, samples)), iterations


def regret(least):
    """``(median regret over rounds, [per-round regrets], fastest backend row)``."""
    backends = {row: v for row, v in least.items() if not row.startswith("auto")}
    auto = least["auto@1"]
    per_round = [auto[i] / min(v[i] for v in backends.values()) for i in range(len(auto))]
    fastest = min(backends, key=lambda row: np.median(backends[row]))
    return float(np.median(per_round)), per_round, fastest


def summary(cells):
    """Median and max regret over the fixed grid and over the untuned cells."""
    lines = []
    for label, keep in (("grid", lambda g: "untuned" not in g),
                        ("untuned", lambda g: "untuned" in g)):
        values = [c["regret"] for g, c in cells.items() if keep(g)]
        if values:
            lines.append(f"{label}: {len(values)} cells, median {np.median(values):.3f}, "
                         f"max {max(values):.3f}")
    return lines


def main(argv=None, prog=None):
    """``convcore bench regret``: auto's regret per cell, then the medians and maxima."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="*", help="substrings of the regret groups' names "
                        "(default: all of the profile's)")
    parser.add_argument("--profile", choices=[grid.QUICK, grid.FULL], default=grid.FULL)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="also write {group: {regret, rounds, auto, fastest, "
                        "least}} here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    from .rounds import one_thread_libraries, select

    one_thread_libraries()
    problems = [p for p in select(["regret"], args.profile)
                if not args.cells or any(c in p.group for c in args.cells)]
    if not problems:
        parser.error(f"no regret cell of the {args.profile} profile matches {args.cells}")
    print(stamp.line() + " Times: CPU time of the calling thread, one thread.", flush=True)
    import convcore

    cells = {}
    for problem in problems:
        with timing.row_conditions(problem):
            least, notes = measure_cell(problem, args.rounds)
        with convcore.threads(1):
            choice = contenders.auto_choice(problem)
        value, per_round, fastest = regret(least)
        cells[problem.group] = {"regret": value, "rounds": per_round, "auto": choice,
                                "fastest": fastest.split("@")[0], "least": least,
                                "notes": notes}
        print(f"{problem.group:<58} {value:6.3f} (rounds {min(per_round):.2f}-"
              f"{max(per_round):.2f})  auto: {choice:<9} fastest: {fastest.split('@')[0]} "
              f"{np.median(least[fastest]) * 1e3:.3g} ms", flush=True)
    for line in summary(cells):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(cells, f)
    return 0

