"""Noise-aware comparison of two benchmark runs (or two builds, row by row).

On a shared machine noise is one-sided: a call descheduled, a parallel region waiting for a
thread the scheduler took away (docs/design.md, "Performance notes"), so a row's times are
often bimodal, and the median of a few rounds jumps between the modes from run to run.
Slower code moves every quantile. So a row is gated on a low quantile of its times (the 10th percentile); it
regresses when

* that quantile is slower by more than the row's own limit (``new / old > 1 + limit``), where
  the limit is the largest of the threshold, the row's noise floor (the spread either run
  showed between its low quantile and its upper quartile: a row that jumps between two modes
  within a run can land in either from run to run) and, for rows of a few tens of
  microseconds, ``ABSOLUTE_FLOOR`` over its time (per-call overhead varies from process to
  process by a few microseconds, whatever the code), plus ``RERUN_DRIFT``: what a row moves
  between runs that its spread within a run does not show;
* by more than both runs' spread explains: the 95% bootstrap interval of that ratio,
  resampling both runs' raw times, lies above 1;
* by more than the machine explains: the contenders (SciPy, OpenCV, NumPy, torch rows) are
  the controls, since convcore's code does not change them; the row's ratio over the median
  of its group's contender ratios (of all contenders, for groups without any) is over the
  row's limit;
* and a second measurement, in a fresh process, finds it again (``confirm``, done by
  ``convcore bench``).

Rows of the busy and regret families are reported, not gated (``UNGATED`` says why).

A whole backend regresses when the median of its rows' ratios is over the median of the
other convcore rows' ratios (other backends, ``auto``) by more than the threshold, over at
least ``BACKEND_MIN_ROWS`` rows of gated groups (tiny calls left out). Machine load moves
every backend's rows alike; one backend's slower code moves only its own, in every group, so
the median over its rows finds a slowdown that no single row shows beyond its noise. (On the
2-core VM, unchanged code gave 0.99-1.04 and a backend slowed by 15% 1.16-1.19.) It names
that backend's rows; being the median of many rows, each timed at another moment, it needs
no second measurement.

A run is refused as not comparable, never passed, when the machine gave it less than it gave
the baseline (``busier``): its parallel probe (every core hashing at once, before every
group of the run; the median) took longer by ``BUSIER_PROBE``; or its threads waited for a CPU a larger
share of their time (``/proc/self/task/*/schedstat``) by ``BUSIER_WAIT``; or other processes
took a larger share of the CPUs (``/proc/stat``) by ``BUSIER``; or the contenders that use
every core (the parallel controls) ran slower by ``BUSIER_RATIO``. Runs on different machines
or settings are compared, with a warning naming the differences.
"""

import numpy as np

from convcore.cli.bench import machine

THRESHOLD = 0.10
LOW_Q = 10              # the gated quantile of a row's times (percent)
# seconds: process-to-process noise of per-call overhead (measured on the 2-core VM: fft on
# a 64-sample signal took 37 to 57 us, by process, over ten runs of unchanged code)
ABSOLUTE_FLOOR = 20e-6
# Added to a single row's limit: on the 2-core VM, reruns of unchanged code a few minutes
# apart moved single rows' 10th percentiles by up to 17% (one-thread im2col and openmp at
# 1024^2 k7, max_pool2d), each with a spread within its run of 1-3%, and the same rows in
# several reruns in a row: the baseline's minutes were faster for them. A backend slowed as
# a whole is found by the median over its rows (`backend_shifts`), which moved at most 5.4%
# in the same reruns, so it keeps the bare threshold.
RERUN_DRIFT = 0.10
BOOTSTRAP = 2000
BUSIER = 0.25           # extra share of the machine taken by other processes: not comparable
BUSIER_RATIO = 0.20     # the contenders (controls) slower by this much: not comparable
BUSIER_PROBE = 0.30     # the parallel probe slower by this much: not comparable
BUSIER_WAIT = 0.15      # this share more of the run's thread time spent waiting for a CPU
# ... and this share less: the baseline came from a saturated machine, this run from an idle
# one. convcore sizes its thread teams to the load and the contenders and single-threaded
# backends do not, so every ratio moves: on the 2-core VM (baseline waiting 54% of its
# thread time, reruns 3%) fft and naive looked 45-60% slower than the other backends in
# unchanged code, and openmp's injected 15% vanished. Not comparable either way.
REGIME_WAIT = 0.45
# contenders that use every core: a busier machine slows them first (a parallel region
# waits for its slowest thread); single-threaded ones may not notice one core taken of two
# Families reported, not gated: busy is measured under its own load; regret repeats
# problems of the other families to time auto's choice and has no contenders, so a burst of
# another process's work during it cannot be told from slower code (on the 2-core VM its fft
# rows moved 11-14% and its naive and im2col rows 1.3-3.7x between runs of unchanged code)
UNGATED = ("busy", "regret")
BACKEND_MIN_ROWS = 8
TINY = 100e-6           # rows faster than this are left out of the backend medians
PARALLEL_CONTENDERS = ("cv2.", "torch.", "numpy.matmul", "pyfftw.", "scipy.signal.fftconvolve",
                       "scipy.signal.oaconvolve")


def ratio_interval(old, new, q=LOW_Q, resamples=BOOTSTRAP, seed=0, level=0.95):
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


def noise_floor(old, new):
    """A row's own noise: the larger of both runs' spread from the low quantile to the upper
    quartile, relative (``q75 / q10 - 1``); 0 without spread.

    Examples
    --------
    >>> round(noise_floor([1.0] * 8 + [1.3] * 12, [1.0] * 20), 2)   # two modes in one run
    0.3
    """
    spreads = [np.percentile(x, 75) / np.percentile(x, LOW_Q) - 1
               for x in (np.asarray(old, float), np.asarray(new, float)) if x.size >= 2]
    return float(max(spreads, default=0.0))


def row_limit(old, new, threshold=THRESHOLD, drift=RERUN_DRIFT):
    """The slowdown a row must exceed to count: the threshold, its noise floor or, for tiny
    calls, ``ABSOLUTE_FLOOR`` over its low quantile, whichever is largest, plus
    `drift` (``RERUN_DRIFT``).

    Examples
    --------
    >>> round(row_limit([1e-3] * 5, [1e-3] * 5), 2)              # quiet, 1 ms: threshold + drift
    0.2
    >>> round(row_limit([40e-6] * 5, [40e-6] * 5), 2)            # 40 us: 20 us of it, + drift
    0.6
    """
    low = float(np.percentile(np.asarray(old, float), LOW_Q))
    return drift + max(threshold, noise_floor(old, new),
                             ABSOLUTE_FLOOR / low if low > 0 else 0.0)


def compare_samples(old, new, threshold=THRESHOLD, drift=RERUN_DRIFT):
    """Verdict on one row from both runs' raw times (seconds).

    Returns
    -------
    dict
        ``ratio`` (new median / old median, reported), ``low_ratio`` (low quantiles, gated),
        ``interval`` (of ``low_ratio``), ``limit`` (the row's own threshold, see
        `row_limit`) and ``verdict``: 'slower', 'faster' or 'same'.

    Examples
    --------
    >>> compare_samples([1.0, 1.0, 1.0], [1.3, 1.3, 1.3])["verdict"]
    'slower'
    """
    old, new = np.asarray(old, float), np.asarray(new, float)
    ratio = float(np.median(new) / np.median(old))
    low_ratio = float(np.percentile(new, LOW_Q) / np.percentile(old, LOW_Q))
    limit = row_limit(old, new, threshold, drift)
    if old.size >= 2 and new.size >= 2:
        lo, hi = ratio_interval(old, new)
    else:  # no spread saved: the ratio alone
        lo = hi = low_ratio
    if low_ratio > 1 + limit and lo > 1:
        verdict = "slower"
    elif low_ratio < 1 / (1 + limit) and hi < 1:
        verdict = "faster"
    else:
        verdict = "same"
    return {"ratio": ratio, "low_ratio": low_ratio, "interval": (lo, hi), "limit": limit,
            "verdict": verdict}


def _samples(bench):
    stats = bench["stats"]
    return stats.get("data") or [stats["median"]]


def _key(bench):
    row = bench.get("extra_info", {}).get("row", bench["name"])
    return bench["group"], row


def compare_runs(old_run, new_run, threshold=THRESHOLD, drift=RERUN_DRIFT):
    """Compare two pytest-benchmark JSON documents (``convcore bench --save`` files).

    Returns
    -------
    dict
        ``rows``: ``[(group, row, verdict dict)]`` for rows in both runs; ``regressions``: the
        slower rows; ``backend_shifts`` (see `backend_shifts`) and ``backend_regressions``,
        the backends whose rows stand out; ``machine_factor`` / ``parallel_factor``: the
        contenders' median ratio (all, and those using every core); ``only_old`` /
        ``only_new``: rows in one run only; ``differences``: machine settings that differ;
        ``not_comparable``: a reason, or None; ``quieter``: a warning, or None.
    """
    old = {_key(b): b for b in old_run["benchmarks"]}
    new = {_key(b): b for b in new_run["benchmarks"]}
    rows = []
    for key in [k for k in new if k in old]:
        verdict = compare_samples(_samples(old[key]), _samples(new[key]), threshold, drift)
        verdict["control"] = new[key].get("extra_info", {}).get("kind") == "contender"
        rows.append((key[0], key[1], verdict))
    controls = _controls(rows)
    for group, row, verdict in rows:
        threads = row.partition("@")[2]  # row@1 against the group's one-thread controls
        machine_factor = controls.get((group, threads),
                                      controls.get(group, controls.get(None, 1.0)))
        verdict["adjusted"] = verdict["low_ratio"] / machine_factor
        if verdict["verdict"] == "slower" and (
                verdict["control"] or group.startswith(UNGATED)
                or verdict["adjusted"] <= 1 + verdict["limit"]):
            # a contender (the control itself), an ungated family, or a row no slower
            # than the machine was: reported, not gated
            verdict["verdict"] = "slower (not gated)"
    old_info = old_run.get("machine_info", {}).get("convcore", {})
    new_info = new_run.get("machine_info", {}).get("convcore", {})
    shifts = backend_shifts(rows, {key: _samples(old[key]) for key in old})
    return {"rows": rows, "machine_factor": controls.get(None),
            "parallel_factor": controls.get("parallel"), "backend_shifts": shifts,
            "backend_regressions": sorted(name for name, (shift, _) in shifts.items()
                                          if shift > 1 + threshold),
            "regressions": [r for r in rows if r[2]["verdict"] == "slower"],
            "only_old": sorted(set(old) - set(new)), "only_new": sorted(set(new) - set(old)),
            "differences": machine.differences(old_info, new_info),
            "not_comparable": not_comparable(old_info, new_info, controls.get("parallel")),
            "quieter": quieter(old_info, new_info)}


def backend_shifts(rows, old_samples):
    """``{backend: (median of its rows' low ratios / median of the other convcore rows',
    rows)}`` over the gated groups' convcore rows of at least ``TINY`` seconds, for
    backends with ``BACKEND_MIN_ROWS`` rows.

    Examples
    --------
    >>> same = {"verdict": "same", "control": False, "low_ratio": 1.0}
    >>> slow = dict(same, low_ratio=1.15)
    >>> rows = [(f"g{i}", "a", slow) for i in range(8)] + [(f"g{i}", "b", same)
    ...                                                    for i in range(8)]
    >>> {k: (round(v, 2), n) for k, (v, n) in backend_shifts(rows, {}).items()}
    {'a': (1.15, 8), 'b': (0.87, 8)}
    """
    by_backend = {}
    for group, row, verdict in rows:
        times = old_samples.get((group, row))
        if verdict["control"] or group.startswith(UNGATED) or (
                times and np.percentile(times, LOW_Q) < TINY):
            continue
        by_backend.setdefault(row.partition("@")[0], []).append(verdict["low_ratio"])
    shifts = {}
    for name, ratios in by_backend.items():
        others = [r for other, rs in by_backend.items() if other != name for r in rs]
        if len(ratios) >= BACKEND_MIN_ROWS and len(others) >= BACKEND_MIN_ROWS:
            shifts[name] = (float(np.median(ratios) / np.median(others)), len(ratios))
    return shifts


def _parallel(row):
    return row.startswith(PARALLEL_CONTENDERS)


def _controls(rows):
    """``{group: median contender ratio}``, ``{(group, 'N'): median of its contenders on N
    threads}`` (rows ``name@N``), ``{None: median over all contenders}`` and
    ``{"parallel": median over the contenders that use every core}``."""
    by_group, by_threads, parallel = {}, {}, []
    for group, row, verdict in rows:
        if verdict["control"] and not group.startswith("busy"):
            by_group.setdefault(group, []).append(verdict["low_ratio"])
            if "@" in row:
                by_threads.setdefault((group, row.partition("@")[2]), []).append(
                    verdict["low_ratio"])
            if _parallel(row) and not row.endswith("@1"):
                parallel.append(verdict["low_ratio"])
    controls = {group: float(np.median(r)) for group, r in by_group.items()}
    controls.update({key: float(np.median(r)) for key, r in by_threads.items()})
    every = [r for ratios in by_group.values() for r in ratios]
    if every:
        controls[None] = float(np.median(every))
    if parallel:
        controls["parallel"] = float(np.median(parallel))
    return controls


_RERUN = "the timings are not comparable (rerun when the machine is as quiet as it was)"


def _probe(info):
    """A run's parallel probe: the median of its samples through the run (saved as
    ``parallel_probe_seconds``), or for a run without them the smaller of its start's and
    end's (noise only adds); None when it has none."""
    key = "parallel_probe_seconds"
    if info.get("parallel_probe_samples"):
        return info.get(key)
    values = [v for v in (info.get(key), info.get("at_start", {}).get(key)) if v]
    return min(values) if values else None


def quieter(old_info, new_info):
    """A warning when the baseline's threads waited for a CPU much more than this run's (a
    baseline saved on a saturated machine: convcore sizes its thread teams to the load, the
    contenders do not, so ratios between them shift), or None."""
    old_wait, new_wait = old_info.get("wait_share"), new_info.get("wait_share")
    if old_wait is None or new_wait is None or not \
            BUSIER_WAIT < old_wait - new_wait <= REGIME_WAIT:
        return None
    return (f"the baseline's threads waited for a CPU {old_wait:.0%} of their time, this "
            f"run's {new_wait:.0%}: the baseline was saved on a busier machine; save it again "
            "when the machine is as quiet as now")


def not_comparable(old_info, new_info, parallel_factor=None):
    """Why the new run's machine gave it less than the old run's did, or None.

    Examples
    --------
    >>> why = not_comparable({"parallel_probe_seconds": 0.010},
    ...                      {"parallel_probe_seconds": 0.016})
    >>> why.startswith("the machine was busier: every core hashing at once took 1.60x")
    True
    """
    reasons = []
    old_probe, new_probe = _probe(old_info), _probe(new_info)
    if old_probe and new_probe and new_probe / old_probe > 1 + BUSIER_PROBE:
        reasons.append(f"every core hashing at once took {new_probe / old_probe:.2f}x as long "
                       "as during the baseline (another process had a core)")
    old_wait, new_wait = old_info.get("wait_share"), new_info.get("wait_share")
    if old_wait is not None and new_wait is not None and new_wait - old_wait > BUSIER_WAIT:
        reasons.append(f"this run's threads waited for a CPU {new_wait:.0%} of their time "
                       f"against {old_wait:.0%} in the baseline")
    if old_wait is not None and new_wait is not None and old_wait - new_wait > REGIME_WAIT:
        return (f"the baseline was saved on a saturated machine (its threads waited for a CPU "
                f"{old_wait:.0%} of their time, this run's {new_wait:.0%}): convcore sizes its "
                "thread teams to the load, the contenders do not, so no ratio means what it "
                "says; save the baseline again on a machine as quiet as now")
    old_load, new_load = old_info.get("other_load"), new_info.get("other_load")
    if old_load is not None and new_load is not None and new_load - old_load > BUSIER:
        reasons.append(f"other processes used {new_load:.0%} of the CPUs against "
                       f"{old_load:.0%} during the baseline")
    if parallel_factor is not None and parallel_factor > 1 + BUSIER_RATIO:
        reasons.append(f"the contenders that use every core (OpenCV, torch, BLAS, FFT "
                       f"workers) ran {parallel_factor:.2f}x slower than in the baseline")
    if not reasons:
        return None
    return "the machine was busier: " + "; ".join(reasons) + "; " + _RERUN


def format_result(result, threshold=THRESHOLD):
    """Text lines: the rows (slowest first), then warnings and the verdict."""
    lines = [f"  {'group':<44}{'row':<26}{'median':>8} {'low q.':>8}  {'95% interval':<15}"
             f"{'/machine':>9} {'limit':>6}  verdict   (new/old ratios)"]
    for group, row, v in sorted(result["rows"], key=lambda r: -r[2]["low_ratio"]):
        lo, hi = v["interval"]
        lines.append(f"  {group:<44}{row:<26}{v['ratio']:>7.3f}x {v['low_ratio']:>7.3f}x  "
                     f"[{lo:.2f}, {hi:.2f}]{'':<3}{v['adjusted']:>8.3f}x {v['limit']:>6.0%}  "
                     f"{v['verdict']}")
    if result.get("machine_factor"):
        lines.append(f"contenders (the controls) ran {result['machine_factor']:.3f}x their "
                     "baseline times; '/machine' is each row's ratio over its group's controls")
    for key in result["only_old"]:
        lines.append(f"  {key[0]:<44}{key[1]:<26}   (in the baseline only)")
    if result.get("quieter"):
        lines.append("warning: " + result["quieter"])
    for setting, a, b in result["differences"]:
        lines.append(f"warning: the runs differ in {setting}: baseline {a!r}, this run {b!r}")
    if result["not_comparable"]:
        lines.append("NOT COMPARABLE: " + result["not_comparable"])
    for name in result.get("backend_regressions", []):
        shift, count = result["backend_shifts"][name]
        rows = sorted(((v["low_ratio"], g, r) for g, r, v in result["rows"]
                       if r.partition("@")[0] == name), reverse=True)
        lines.append(f"{'REGRESSION' if not result['not_comparable'] else 'not judged'}: "
                     f"backend {name}: the median of its {count} rows is {shift - 1:+.1%} "
                     "against the other convcore rows' (the whole backend is slower); its "
                     "rows, slowest first: " + ", ".join(f"{g} {r} {x - 1:+.0%}"
                                                         for x, g, r in rows[:6]))
    if result["regressions"] and result["not_comparable"]:
        lines.append(f"{len(result['regressions'])} row(s) looked slower, not judged (the "
                     "machine was busier): " + ", ".join(f"{g} {r}" for g, r, _ in
                                                        result["regressions"]))
    elif result["regressions"]:
        lines.append(f"REGRESSION: {len(result['regressions'])} row(s) slower than their "
                     f"limits ({threshold:.0%} plus {RERUN_DRIFT:.0%} rerun drift, or their "
                     f"own noise floor) beyond the noise:")
        for group, row, v in result["regressions"]:
            lines.append(f"  {group} {row}: {v['low_ratio'] - 1:+.1%} (10th percentile, limit "
                         f"{v['limit']:.0%}), {v['ratio'] - 1:+.1%} (median)")
    elif not result["not_comparable"] and not result.get("backend_regressions"):
        lines.append(f"no regression beyond {threshold:.0%} (a backend's rows together) or "
                     f"{threshold + RERUN_DRIFT:.0%} (a single row) and the noise "
                     f"({len(result['rows'])} rows compared)")
    return lines


def exit_code(result):
    """0 no regression, 1 regression, 3 not comparable (a busier machine: refused)."""
    if result["not_comparable"]:
        return 3
    return 1 if result["regressions"] or result.get("backend_regressions") else 0


def confirm(first, second):
    """Keep the regressions of `first` that `second` (a re-measurement) also finds."""
    again = {(g, r) for g, r, _ in second["regressions"]}
    kept = [row for row in first["regressions"] if (row[0], row[1]) in again]
    for group, row, verdict in first["rows"]:
        if verdict["verdict"] == "slower" and (group, row) not in again:
            verdict["verdict"] = "slower once (not confirmed)"
    return dict(first, regressions=kept,
                not_comparable=first["not_comparable"] or second["not_comparable"])
