"""``convcore bench --ab REF``: two builds timed alternately, process by process.

REF is exported with ``git archive`` and built into a temporary virtual environment that
sees this environment's packages (``--system-site-packages``, and a ``.pth`` line naming
this environment's site-packages when it is itself a venv), so NumPy/SciPy/pyFFTW and
every other dependency come from the same place as this build's and only convcore differs. This build's suite is copied next to it and both builds run that
same copy (``ab_worker``) in fresh processes, alternately A B, B A, A B, ... so slow drifts of
a shared machine fall on both. Per row, the ratio is the geometric mean over process pairs of
the ratio of the two processes' lower quartiles (``compare.py`` says why not medians), with a
t confidence interval over the pairs.
"""

import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np

from convcore.cli.bench import suite

# two-sided 95% t quantiles by degrees of freedom (for the interval over process pairs)
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def build(repo, ref, where, log):
    """Export `ref` of `repo` and pip-install it into a new venv; return its python."""
    source = os.path.join(where, "src")
    os.makedirs(source)
    archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", ref],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"convcore bench --ab: git cannot export {ref!r} from {repo}: "
                         f"{archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", source], input=archive.stdout, check=True)
    venv = os.path.join(where, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    _see_this_environment(python)
    log(f"building {ref} into {venv} ...")
    done = subprocess.run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                           "-q", source], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"convcore bench --ab: building {ref!r} failed:\n{done.stderr[-3000:]}")
    return python


def _see_this_environment(python):
    """Make the new venv import this environment's dependencies: ``--system-site-packages``
    reaches only the base interpreter's, and a venv running this tool (CI's, a developer's)
    holds them in its own site-packages. A ``.pth`` line appends that folder to the new
    venv's path, after its own packages (so its convcore is the one imported); the folder's
    own ``.pth`` hooks (this build's editable finder) are not run."""
    ours = sysconfig.get_paths()["purelib"]
    theirs = subprocess.run([python, "-c", "import sysconfig; "
                             "print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if os.path.realpath(ours) != os.path.realpath(theirs):
        with open(os.path.join(theirs, "convcore_ab_parent_environment.pth"), "w") as f:
            f.write(ours + "\n")


def pair_ratios(a_runs, b_runs):
    """Per row: ``(ratio, low, high, pairs)`` of b over a from per-process samples.

    `a_runs`, `b_runs`: lists (one per process, paired by index) of ``{row: [seconds]}``.

    Examples
    --------
    >>> a = [{"r": [1.0, 1.0]}, {"r": [1.1, 1.1]}, {"r": [0.9, 0.9]}]
    >>> b = [{"r": [1.2, 1.2]}, {"r": [1.32, 1.32]}, {"r": [1.08, 1.08]}]
    >>> ratio, low, high, n = pair_ratios(a, b)["r"]
    >>> round(ratio, 3), round(low, 3), round(high, 3), n
    (1.2, 1.2, 1.2, 3)
    """
    rows = set.intersection(*(set(run) for run in a_runs + b_runs)) if a_runs else set()
    result = {}
    for row in sorted(rows):
        logs = np.array([math.log(np.percentile(b[row], 25) / np.percentile(a[row], 25))
                         for a, b in zip(a_runs, b_runs)])
        mean = float(logs.mean())
        if logs.size > 1:
            half = T95.get(logs.size - 1, 2.0) * float(logs.std(ddof=1)) / math.sqrt(logs.size)
        else:
            half = float("inf")
        result[row] = (math.exp(mean), math.exp(mean - half), math.exp(mean + half), logs.size)
    return result


def verdicts(ratios, threshold):
    """``{row: 'slower' | 'faster' | 'same'}``: slower when the ratio is over 1 + threshold
    and its whole interval above 1."""
    out = {}
    for row, (ratio, low, high, _) in ratios.items():
        if ratio > 1 + threshold and low > 1:
            out[row] = "slower"
        elif ratio < 1 / (1 + threshold) and high < 1:
            out[row] = "faster"
        else:
            out[row] = "same"
    return out


# The suite has no script entry points (docs/benchmarks.md): the worker is its module's main.
WORKER = "import sys; from {}.ab_worker import main; sys.exit(main(sys.argv[1:]))"


def worker_command(python, profile, out, groups=None, threads=None,
                   package="convcore_ab_suite"):
    """The command that runs one A/B process with `python` on the suite `package` (the
    copy both builds share)."""
    command = [python, "-c", WORKER.format(package), "--profile", profile, "--out", out]
    if groups:
        command += ["--groups", groups]
    if threads:
        command += ["--threads", str(threads)]
    return command


def main(args):
    import json

    def log(text):
        print(text, file=sys.stderr, flush=True)

    repo = os.path.abspath(args.repo)
    work = tempfile.mkdtemp(prefix="convcore-ab-")
    try:
        a_python = build(repo, args.ab, os.path.join(work, "a"), log)
        if args.against:
            b_python, b_name = build(repo, args.against, os.path.join(work, "b"), log), \
                args.against
        else:
            b_python, b_name = sys.executable, "this build"
        suite_copy = os.path.join(work, "suite")
        shutil.copytree(suite.suite_dir(), os.path.join(suite_copy, "convcore_ab_suite"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        runs = {"a": [], "b": []}
        profile = "quick" if args.quick else "full"
        for i in range(args.rounds):
            order = ("a", "b") if i % 2 == 0 else ("b", "a")
            for side in order:
                python = a_python if side == "a" else b_python
                out = os.path.join(work, f"{side}{i}.json")
                log(f"round {i + 1}/{args.rounds}: {args.ab if side == 'a' else b_name}")
                command = worker_command(python, profile, out, args.keyword,
                                         getattr(args, "ab_threads", None))
                done = subprocess.run(command, cwd=suite_copy, env=env, capture_output=True,
                                      text=True)
                if done.returncode != 0:
                    log(f"convcore bench --ab: the worker failed:\n{done.stderr[-3000:]}")
                    return 1
                with open(out) as f:
                    document = json.load(f)
                runs[side].append(document["times"])
                if i == 0:
                    log(f"  convcore {document['convcore']} from {document['file']}")
        ratios = pair_ratios(runs["a"], runs["b"])
        marks = verdicts(ratios, args.threshold)
        print(f"A/B: {b_name} over {args.ab}, {args.rounds} process pairs, alternating; "
              f"ratio > 1 means {b_name} is slower")
        print(f"  {'group':<44}{'row':<14}{'ratio':>8}  95% interval    verdict")
        for row, (ratio, low, high, _) in sorted(ratios.items(), key=lambda r: -r[1][0]):
            group, _, name = row.partition("|")
            print(f"  {group:<44}{name:<14}{ratio:>7.3f}x  [{low:.3f}, {high:.3f}]  "
                  f"{marks[row]}")
        slower = [row for row, mark in marks.items() if mark == "slower"]
        if slower:
            print(f"REGRESSION: {len(slower)} row(s) slower by more than {args.threshold:.0%}:")
            for row in slower:
                print(f"  {row.replace('|', ' ')}: {ratios[row][0] - 1:+.1%}")
            return 1
        print(f"no row slower by more than {args.threshold:.0%} beyond the noise")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
