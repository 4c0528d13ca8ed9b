"""Noise-aware comparison of two benchmark runs (or two builds, row by row).

On a shared machine noise is one-sided: a call descheduled, a parallel region waiting for a
thread the scheduler took away (PERF-NOTES.md), so a row's times are often bimodal, and the
median of a few rounds jumps between the modes from run to run. Slower code moves every
quantile. So a row is gated on its lower quartile; it regresses when

* its lower quartile is slower by more than the threshold (``new / old > 1 + threshold``);
* by more than both runs' spread explains: the 95% bootstrap interval of that ratio,
  resampling both runs' raw times, lies above 1;
* by more than the machine explains: the contenders (SciPy, OpenCV, NumPy, torch rows) are
  the controls, since convcore's code does not change them; the row's ratio over the median
  of its group's contender ratios (of all contenders, for groups without any) is over
  ``1 + threshold``;
* and a second measurement finds it again (``confirm``, done by ``convcore bench``).

When the controls themselves ran slower by more than ``BUSIER_RATIO``, or other processes
took a larger share of the CPUs than during the baseline (``/proc/stat`` around the run), the
run is refused as not comparable, never passed. Runs on different machines or settings are
compared, with a warning naming the differences.
"""

import numpy as np

from . import machine

THRESHOLD = 0.10
BOOTSTRAP = 2000
BUSIER = 0.25           # extra share of the machine taken by other processes: not comparable
BUSIER_RATIO = 0.20     # the contenders (controls) slower by this much: not comparable


def ratio_interval(old, new, q=25, resamples=BOOTSTRAP, seed=0, level=0.95):
    """Bootstrap interval of ``percentile(new, q) / percentile(old, q)``, both resampled.

    Examples
    --------
    >>> lo, hi = ratio_interval([1.0, 1.01, 0.99, 1.0], [2.0, 2.02, 1.98, 2.0])
    >>> 1.9 < lo <= hi < 2.1
    True
    """
    rng = np.random.default_rng(seed)
    old, new = np.asarray(old, float), np.asarray(new, float)
    a = np.percentile(rng.choice(old, (resamples, old.size)), q, axis=1)
    b = np.percentile(rng.choice(new, (resamples, new.size)), q, axis=1)
    tail = (1 - level) / 2 * 100
    return tuple(float(v) for v in np.percentile(b / a, [tail, 100 - tail]))


def compare_samples(old, new, threshold=THRESHOLD):
    """Verdict on one row from both runs' raw times (seconds).

    Returns
    -------
    dict
        ``ratio`` (new median / old median, reported), ``low_ratio`` (lower quartiles,
        gated), ``interval`` (of ``low_ratio``) and ``verdict``: 'slower', 'faster' or 'same'.

    Examples
    --------
    >>> compare_samples([1.0, 1.0, 1.0], [1.3, 1.3, 1.3])["verdict"]
    'slower'
    """
    old, new = np.asarray(old, float), np.asarray(new, float)
    ratio = float(np.median(new) / np.median(old))
    low_ratio = float(np.percentile(new, 25) / np.percentile(old, 25))
    if old.size >= 2 and new.size >= 2:
        lo, hi = ratio_interval(old, new)
    else:  # no spread saved: the ratio alone
        lo = hi = low_ratio
    if low_ratio > 1 + threshold and lo > 1:
        verdict = "slower"
    elif low_ratio < 1 / (1 + threshold) and hi < 1:
        verdict = "faster"
    else:
        verdict = "same"
    return {"ratio": ratio, "low_ratio": low_ratio, "interval": (lo, hi), "verdict": verdict}


def _samples(bench):
    stats = bench["stats"]
    return stats.get("data") or [stats["median"]]


def _key(bench):
    row = bench.get("extra_info", {}).get("row", bench["name"])
    return bench["group"], row


def compare_runs(old_run, new_run, threshold=THRESHOLD):
    """Compare two pytest-benchmark JSON documents (``convcore bench --save`` files).

    Returns
    -------
    dict
        ``rows``: ``[(group, row, verdict dict)]`` for rows in both runs; ``regressions``: the
        slower rows; ``only_old`` / ``only_new``: rows in one run only; ``differences``:
        machine settings that differ; ``not_comparable``: a reason, or None.
    """
    old = {_key(b): b for b in old_run["benchmarks"]}
    new = {_key(b): b for b in new_run["benchmarks"]}
    rows = []
    for key in [k for k in new if k in old]:
        verdict = compare_samples(_samples(old[key]), _samples(new[key]), threshold)
        verdict["control"] = new[key].get("extra_info", {}).get("kind") == "contender"
        rows.append((key[0], key[1], verdict))
    controls = _controls(rows)
    for group, _, verdict in rows:
        machine_factor = controls.get(group, controls.get(None, 1.0))
        verdict["adjusted"] = verdict["low_ratio"] / machine_factor
        if verdict["verdict"] == "slower" and (
                verdict["control"] or group.startswith("busy")
                or verdict["adjusted"] <= 1 + threshold):
            # a contender (the control itself), the busy group (measured under its own
            # load), or a row no slower than the machine was: reported, not gated
            verdict["verdict"] = "slower (not gated)"
    old_info = old_run.get("machine_info", {}).get("convcore", {})
    new_info = new_run.get("machine_info", {}).get("convcore", {})
    return {"rows": rows, "machine_factor": controls.get(None),
            "regressions": [r for r in rows if r[2]["verdict"] == "slower"],
            "only_old": sorted(set(old) - set(new)), "only_new": sorted(set(new) - set(old)),
            "differences": machine.differences(old_info, new_info),
            "not_comparable": not_comparable(old_info, new_info, controls.get(None))}


def _controls(rows):
    """``{group: median contender ratio}`` and ``{None: median over all contenders}``."""
    by_group = {}
    for group, _, verdict in rows:
        if verdict["control"] and not group.startswith("busy"):
            by_group.setdefault(group, []).append(verdict["low_ratio"])
    controls = {group: float(np.median(r)) for group, r in by_group.items()}
    every = [r for ratios in by_group.values() for r in ratios]
    if every:
        controls[None] = float(np.median(every))
    return controls


def not_comparable(old_info, new_info, machine_factor=None):
    """Why the new run's machine was too much busier than the old run's, or None."""
    if machine_factor is not None and machine_factor > 1 + BUSIER_RATIO:
        return (f"the contenders (SciPy, OpenCV, NumPy, torch) ran {machine_factor:.2f}x "
                "slower than in the baseline: the machine was busier or slower, the timings "
                "are not comparable (rerun when it is quieter)")
    old_load, new_load = old_info.get("other_load"), new_info.get("other_load")
    if old_load is None or new_load is None:
        return None
    if new_load - old_load > BUSIER:
        return (f"other processes used {new_load:.0%} of the CPUs during this run against "
                f"{old_load:.0%} during the baseline: the machine was busier, the timings "
                "are not comparable (rerun when it is quieter)")
    return None


def format_result(result, threshold=THRESHOLD):
    """Text lines: the rows (slowest first), then warnings and the verdict."""
    lines = [f"  {'group':<44}{'row':<26}{'median':>8} {'low q.':>8}  {'95% interval':<15}"
             f"{'/machine':>9}  verdict   (new/old ratios)"]
    for group, row, v in sorted(result["rows"], key=lambda r: -r[2]["low_ratio"]):
        lo, hi = v["interval"]
        lines.append(f"  {group:<44}{row:<26}{v['ratio']:>7.3f}x {v['low_ratio']:>7.3f}x  "
                     f"[{lo:.2f}, {hi:.2f}]{'':<3}{v['adjusted']:>8.3f}x  {v['verdict']}")
    if result.get("machine_factor"):
        lines.append(f"contenders (the controls) ran {result['machine_factor']:.3f}x their "
                     "baseline times; '/machine' is each row's ratio over its group's controls")
    for key in result["only_old"]:
        lines.append(f"  {key[0]:<44}{key[1]:<26}   (in the baseline only)")
    for setting, a, b in result["differences"]:
        lines.append(f"warning: the runs differ in {setting}: baseline {a!r}, this run {b!r}")
    if result["not_comparable"]:
        lines.append("NOT COMPARABLE: " + result["not_comparable"])
    if result["regressions"]:
        lines.append(f"REGRESSION: {len(result['regressions'])} row(s) slower by more than "
                     f"{threshold:.0%} beyond the noise:")
        for group, row, v in result["regressions"]:
            lines.append(f"  {group} {row}: {v['low_ratio'] - 1:+.1%} (lower quartile), "
                         f"{v['ratio'] - 1:+.1%} (median)")
    elif not result["not_comparable"]:
        lines.append(f"no regression beyond {threshold:.0%} and the noise "
                     f"({len(result['rows'])} rows compared)")
    return lines


def exit_code(result):
    """0 no regression, 1 regression, 3 not comparable (a busier machine: refused)."""
    if result["not_comparable"]:
        return 3
    return 1 if result["regressions"] else 0


def confirm(first, second):
    """Keep the regressions of `first` that `second` (a re-measurement) also finds."""
    again = {(g, r) for g, r, _ in second["regressions"]}
    kept = [row for row in first["regressions"] if (row[0], row[1]) in again]
    for group, row, verdict in first["rows"]:
        if verdict["verdict"] == "slower" and (group, row) not in again:
            verdict["verdict"] = "slower once (not confirmed)"
    return dict(first, regressions=kept,
                not_comparable=first["not_comparable"] or second["not_comparable"])
