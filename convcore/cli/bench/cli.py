"""``convcore bench`` and ``convcore plot``: argument parsing and exit codes.

Exit codes: 0 all good; 1 a regression (or a wrong result); 2 bad usage or a missing
baseline; 3 the runs are not comparable (the machine was busier during the new run).
"""

import argparse
import json
import os
import sys

from convcore.cli.bench import compare
from convcore.cli.bench import report
from convcore.cli.bench import suite


def bench_parser():
    parser = argparse.ArgumentParser(
        prog="convcore bench",
        description="Run the benchmark grid (every backend and contender), print the "
                    "speedup table; save, compare or A/B runs.")
    parser.add_argument("--quick", action="store_true",
                        help="the quick profile (a few minutes on 2 cores); default: full")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression to narrow the grid "
                        "(with --ab: comma-separated substrings of group names)")
    parser.add_argument("--save", metavar="NAME", help="store this run (raw times and the "
                        "machine's facts) under NAME")
    parser.add_argument("--compare", metavar="NAME", help="rerun the baseline NAME's profile "
                        "and exit 1 on a regression beyond the threshold and the noise")
    parser.add_argument("--ab", metavar="REF", help="build git ref REF into a temporary venv and "
                        "time it against this build, process by process, alternately")
    parser.add_argument("--against", metavar="REF", help="with --ab: build REF too instead of "
                        "using the installed convcore (A/B of two refs)")
    parser.add_argument("--repo", default=".", help="with --ab: the git repository (default .)")
    parser.add_argument("--rounds", type=int, default=4, help="with --ab: process pairs")
    parser.add_argument("--ab-threads", type=int, default=None, metavar="N",
                        help="with --ab: time convcore's rows with N threads (1 is the most "
                             "robust on a busy machine: no parallel region waits for a "
                             "descheduled thread)")
    parser.add_argument("--threshold", type=float, default=compare.THRESHOLD,
                        help="slowdown that counts as a regression (default 0.10)")
    parser.add_argument("--storage", help=f"where runs are saved (default "
                        f"{suite.default_storage()})")
    parser.add_argument("--report", metavar="DIR", help="where speedup.json/.md are written "
                        "(default STORAGE/report)")
    return parser


def bench_main(argv):
    args = bench_parser().parse_args(argv)
    suite.warn_environment()
    if args.ab:
        from convcore.cli.bench import ab

        return ab.main(args)
    baseline = None
    profile = "quick" if args.quick else "full"
    if args.compare:
        path = suite.find_saved(args.compare, args.storage)
        if path is None:
            names = ", ".join(suite.saved_names(args.storage)) or "none"
            print(f"convcore bench: no saved run named {args.compare!r} in "
                  f"{args.storage or suite.default_storage()} (saved: {names}); make one with "
                  f"`convcore bench --save {args.compare}`", file=sys.stderr)
            return 2
        with open(path) as f:
            baseline = json.load(f)
        profile = "full" if any("[full-" in b["fullname"] for b in baseline["benchmarks"]) \
            else "quick"
    code, run, failures = suite.run(profile, args.keyword, args.save, args.storage, args.report)
    for nodeid, text in failures:
        print(f"FAILED {nodeid}\n{text}\n", file=sys.stderr)
    if run is None or not run.get("benchmarks"):
        print("convcore bench: nothing was timed", file=sys.stderr)
        return code or 2
    groups = report.build(run["benchmarks"], run.get("convcore_unavailable"))
    print(report.text(groups))
    paths = report.write(groups, args.report or os.path.join(
        args.storage or suite.default_storage(), "report"),
        machine=run.get("machine_info", {}).get("convcore"))
    print("written: " + ", ".join(paths))
    if args.save:
        print(f"saved as {args.save!r} in {args.storage or suite.default_storage()}")
    if failures:
        return 1
    if baseline is not None:
        result = compare.compare_runs(baseline, run, args.threshold)
        if result["regressions"] and not result["not_comparable"]:
            result = _confirm(result, baseline, run, args)
        print(f"\ncompared with {args.compare!r}:")
        print("\n".join(compare.format_result(result, args.threshold)))
        return compare.exit_code(result)
    return 0 if code == 0 else 1


CONFIRM_PROCESSES = 3


def _confirm(result, baseline, run, args):
    """Measure the regressed rows (and their groups' contenders, the controls) again in fresh
    processes, up to ``CONFIRM_PROCESSES`` of them: a row counts only when every one finds it
    slower too (README, "Benchmarks": compare). A process the machine gave less (``compare.not_comparable``)
    is not counted; when none could be counted, the comparison is refused, not passed.

    Fresh processes, because some slowness belongs to a process, not to the code: FFTW plans
    measured at a busy moment, memory that did or did not get huge pages, a thread team sized
    while others ran. On the 2-core VM, reruns of unchanged code had single rows 13-17%
    slower than their baseline (one-thread im2col, max_pool2d), and a first fresh process
    agreed; a slower build is slower in every process. A backend slowed as a whole is found
    by its median over many rows (``compare.backend_shifts``), which needs no re-measurement.
    """
    measured, refused = 0, None
    for attempt in range(1, CONFIRM_PROCESSES + 1):
        if not result["regressions"] or result["not_comparable"]:
            break
        suspects = {(group, row) for group, row, _ in result["regressions"]}
        groups = {group for group, _ in suspects}
        ids = [b["fullname"].split("::", 1)[1] for b in run["benchmarks"]
               if b["group"] in groups and (b.get("extra_info", {}).get("kind") == "contender"
                                            or (b["group"], b["extra_info"].get("row"))
                                            in suspects)]
        print(f"{len(suspects)} row(s) look slower: measuring them again in a fresh process "
              f"({attempt} of at most {CONFIRM_PROCESSES})", file=sys.stderr)
        _, again, _ = suite.run(node_ids=ids, fresh=True)
        if again is None:
            break
        merged = dict(again, benchmarks=again["benchmarks"] + [
            b for b in run["benchmarks"] if b["group"] not in groups])
        second = compare.compare_runs(baseline, merged, args.threshold)
        if second["not_comparable"]:
            # the machine gave this process less: its rows can neither confirm nor clear
            # (a fresh process's probe is one or two samples; one of them after start-up
            # read 1.5x on the quiet VM)
            refused = second["not_comparable"]
            continue
        measured += 1
        result = compare.confirm(result, second)
    if result["regressions"] and not measured and refused:
        result = dict(result, not_comparable=f"{refused} (while measuring the slower rows "
                                             f"again)")
    return result


def plot_main(argv):
    parser = argparse.ArgumentParser(
        prog="convcore plot",
        description="Time vs kernel size per backend and contender (PNG and SVG), from a "
                    "saved run or a pytest-benchmark JSON file.")
    parser.add_argument("run", nargs="?", help="a saved run's NAME or a JSON file (default: "
                        "the newest saved run)")
    parser.add_argument("--storage")
    parser.add_argument("--output", default="convcore-plots", help="folder for the images")
    args = parser.parse_args(argv)
    from convcore.cli.bench import plot

    document = plot.load_run(args.run, args.storage)
    if document is None:
        print(f"convcore plot: no run {args.run or ''} found; save one with "
              "`convcore bench --quick --save NAME`", file=sys.stderr)
        return 2
    for path in plot.plot_run(document, args.output):
        print(path)
    return 0
