"""Busy-machine rounds: what a pipeline gets per call when another process wants a core.

Run (the pytest-benchmark suite folds the same cells into its "busy" group)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE convcore bench busy [--mode busy] [--rounds 5]

For every cell (float32 'same' convolutions: dense k5/k7 and rank-1 k15, which auto hands to
``separable``) three contenders run in their own blocks, each call followed by 1 ms of pure
Python work as in any pipeline: convcore with its default threads, the same with the
contention limit off ("fixed": every call starts the full team, as before the contention
limit of docs/design.md), convcore under ``convcore.threads(1)``, and ``cv2.filter2D``. "busy" runs them
while one CPU-bound competitor (``python -c "while True: pass"``, started and killed here)
holds a core; "quiet" runs them without it. Each round gives mean / median / p90 / p99 per contender; the table shows the
median over rounds of each figure, then the ratios docs/design.md's busy-machine notes
hold the engine to:

- busy: default mean <= 1.25x the threads(1) mean, default p99 <= 3x the threads(1) median
  (and, for a machine busier than one competitor, where threads(1) has stalls of its own,
  default p99 against threads(1) p99);
- quiet: threads(1) mean / default mean >= 1.7 at 1024^2 and 2048^2 k7 (two threads).

On a shared machine "quiet" is only as quiet as the other users let it be: the script prints
the load average and the engine's own contention reading before each mode.
"""

import argparse
import contextlib
import json
import signal
import sys
import time

import numpy as np

import convcore

from . import engine_modules, stamp, timing
from .timing import python_work

CELLS = [  # (name, image side, kernel side, rank-1)
    ("256^2 k5", 256, 5, False),
    ("512^2 k7", 512, 7, False),
    ("1024^2 k7", 1024, 7, False),
    ("2048^2 k7", 2048, 7, False),
    ("512^2 r1 k15", 512, 15, True),
    ("1024^2 r1 k15", 1024, 15, True),
]
CONTENDERS = ("default", "fixed", "threads1", "cv2")


def make_cell(side, k, rank1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((side, side)).astype(np.float32)
    if rank1:
        u, v = rng.standard_normal(k), rng.standard_normal(k)
        kernel = np.outer(u, v).astype(np.float32)
    else:
        kernel = rng.standard_normal((k, k)).astype(np.float32)
    return x, kernel


def contender(name, x, kernel):
    if name == "cv2":
        import cv2

        flipped = np.ascontiguousarray(kernel[::-1, ::-1])  # filter2D correlates
        return lambda: cv2.filter2D(x, -1, flipped, borderType=cv2.BORDER_CONSTANT)
    if name == "fixed":  # default threads with the contention limit off (the old behaviour)
        _contention = engine_modules.module("convcore.runtime.contention")

        def call():
            _contention.set_adaptive(False)
            try:
                return convcore.convolve(x, kernel, mode="same")
            finally:
                _contention.set_adaptive(True)
        return call
    if name == "threads1":
        def call():
            with convcore.threads(1):
                return convcore.convolve(x, kernel, mode="same")
        return call
    return lambda: convcore.convolve(x, kernel, mode="same")


# Before each block: longer than the contention hold and calm second (_contention) and than
# other libraries' thread pools spin, so no contender's block inherits the previous one's state.
IDLE_SECONDS = 1.2


def block(call, calls, gap=1e-3):
    """Per-call seconds of `calls` calls, each followed by `gap` s of Python work."""
    time.sleep(IDLE_SECONDS)
    for _ in range(3):  # warm: plans, caches, result pool
        call()
        python_work(gap)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
        python_work(gap)
    return times


def stats(times):
    return {"mean": float(times.mean()), "median": float(np.median(times)),
            "p90": float(np.percentile(times, 90)), "p99": float(np.percentile(times, 99))}


def calls_for(side):
    """Enough calls for a p99 (>= 100) without making the 2048^2 blocks take minutes."""
    return 200 if side <= 512 else 120


def load_note():
    with open("/proc/loadavg") as f:
        loadavg = f.read().split()
    try:
        _contention = engine_modules.module("convcore.runtime.contention")
        reading = _contention.reading()
    except ImportError:  # before the engine had a contention signal
        reading = "n/a"
    return (f"loadavg {' '.join(loadavg[:3])} (running/total {loadavg[3]}); convcore "
            f"contention reading: {reading}")


def run_mode(mode, rounds, cells, gap, calls=None):
    # the competitor of busy mode, killed after it; then a wait until the engine sees the
    # cores free again, so quiet mode does not start inside its calm second
    with timing.competitor(settle=0.5) if mode == "busy" else contextlib.nullcontext():
        print(f"# {mode}: {load_note()}", flush=True)
        per_round = {c[0]: {n: [] for n in CONTENDERS} for c in cells}
        prepared = {c[0]: make_cell(*c[1:]) for c in cells}
        for r in range(rounds):
            for name, side, _, _ in cells:
                x, kernel = prepared[name]
                reference = None
                for who in CONTENDERS:
                    call = contender(who, x, kernel)
                    result = call()
                    if reference is None:
                        reference = result
                    else:  # a fast wrong answer must not count
                        scale = float(np.abs(reference).max()) or 1.0
                        assert np.abs(result - reference).max() / scale < 1e-4, (name, who)
                    timing.idle_gap()  # other pools go to sleep (docs/design.md, "Performance notes")
                    row = stats(block(call, calls or calls_for(side), gap))
                    per_round[name][who].append(row)
                    print(f"#   {name:14s} {who:9s} " + " ".join(
                        f"{k} {1e3 * v:.3f}" for k, v in row.items()), flush=True)
            print(f"#   round {r + 1}/{rounds} done", flush=True)
        return per_round


def summarize(per_round):
    """Median over rounds of each statistic, and the spread (min-max of the means)."""
    table = {}
    for cell, by_who in per_round.items():
        table[cell] = {}
        for who, rows in by_who.items():
            table[cell][who] = {k: float(np.median([row[k] for row in rows]))
                                for k in rows[0]}
            means = [row["mean"] for row in rows]
            table[cell][who]["mean_spread"] = (min(means), max(means))
    return table


def print_table(mode, table):
    print(f"\n## {mode} (ms per call; median over rounds of mean / median / p90 / p99)")
    print("| cell | default | fixed team | threads(1) | cv2 | mean default/t1 | "
          "p99 default / t1 median | p99 default / t1 p99 | mean fixed/t1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for cell, by_who in table.items():
        parts = []
        for who in CONTENDERS:
            s = by_who[who]
            parts.append(" / ".join(f"{1e3 * s[k]:.3g}" for k in ("mean", "median", "p90", "p99")))
        d, t = by_who["default"], by_who["threads1"]
        f = by_who["fixed"]
        print(f"| {cell} | {' | '.join(parts)} | {d['mean'] / t['mean']:.2f} | "
              f"{d['p99'] / t['median']:.2f} | {d['p99'] / t['p99']:.2f} | "
              f"{f['mean'] / t['mean']:.2f} |")


def main(argv=None, prog=None):
    """``convcore bench busy``: the busy and quiet tables (Markdown), optionally as JSON."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so the competitor is killed
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("busy", "quiet", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cells", default="", help="comma-separated cell names (default all: "
                        + ", ".join(c[0] for c in CELLS) + ")")
    parser.add_argument("--calls", type=int, default=None,
                        help="timed calls per block (default 200, 120 above 512^2)")
    parser.add_argument("--gap", type=float, default=1e-3, help="Python seconds between calls")
    parser.add_argument("--json", help="also write the summaries here")
    parser.add_argument("--show", help="only print the tables of a file written by --json")
    args = parser.parse_args(argv)
    if args.show:
        with open(args.show) as f:
            for mode, table in json.load(f).items():
                print_table(mode, table)
        return 0
    cells = [c for c in CELLS if not args.cells or c[0] in args.cells.split(",")]
    if not cells:
        parser.error(f"no cell named {args.cells!r}")
    modes = ("busy", "quiet") if args.mode == "both" else (args.mode,)
    print(stamp.line(), flush=True)
    print(f"# {args.rounds} rounds", flush=True)
    results = {}
    for mode in modes:
        results[mode] = summarize(run_mode(mode, args.rounds, cells, args.gap, args.calls))
        print_table(mode, results[mode])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
