"""One process of an A/B comparison: time convcore's rows of the grid once, write the times.

``convcore bench --ab REF`` copies this suite next to a build of REF and calls this module's
``main`` alternately with each build's Python (``convcore.cli.bench.ab.worker_command``), so
both builds run exactly the same problems and timing code. Every result is checked against the
float64 reference first; a wrong answer exits non-zero.
"""

import argparse
import json

from . import contenders, grid, rounds


def main(argv=None):
    """Time the rows of the groups asked for, in this process; write them to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=[grid.QUICK, grid.FULL], default=grid.QUICK)
    parser.add_argument("--groups", default="", help="comma-separated substrings of groups")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per row")
    parser.add_argument("--threads", type=int, default=None,
                        help="time the rows with this many convcore threads (row@N)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    import convcore

    times, unavailable = {}, {}
    patterns = [g for g in args.groups.split(",") if g]
    for problem in rounds.select(patterns, args.profile):
        if problem.family in ("busy", "sgemm"):
            continue  # busy: its own load; sgemm: not convcore
        rows = [r for r in contenders.rows(problem) if contenders.kind(r) != "contender"]
        if args.threads:
            rows = [f"{r.split('@')[0]}@{args.threads}" for r in rows]
            rows = list(dict.fromkeys(rows))
        samples, missing = rounds.measure(problem, rows, rounds=1, calls=args.calls, raw=True)
        for row, values in samples.items():
            times[f"{problem.group}|{row}"] = values
        for row, why in missing.items():
            unavailable[f"{problem.group}|{row}"] = why
    with open(args.out, "w") as f:
        json.dump({"convcore": convcore.__version__, "file": convcore.__file__,
                   "times": times, "unavailable": unavailable}, f)
    return 0
