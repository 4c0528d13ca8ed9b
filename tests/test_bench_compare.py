"""The benchmark comparison's statistics, on synthetic timing data (no timing here)."""

import itertools

import numpy as np
import pytest

from convcore.cli.bench import ab, compare, report


def _noisy(median, n=30, noise=0.03, spikes=0, seed=0, spike=2.0):
    """Times around `median` with relative Gaussian noise, `spikes` of them `spike` x slower."""
    rng = np.random.default_rng(seed)
    times = median * (1 + noise * rng.standard_normal(n))
    times[:spikes] *= spike
    return list(rng.permutation(times))


def test_same_code_with_noise_is_not_a_regression():
    for seed in range(20):
        verdict = compare.compare_samples(_noisy(1e-3, seed=seed), _noisy(1e-3, seed=seed + 100))
        assert verdict["verdict"] == "same", (seed, verdict)


def test_a_15_percent_slowdown_is_beyond_the_noise_of_one_run():
    # the statistics alone (no allowance for drift between runs)
    for seed in range(20):
        verdict = compare.compare_samples(_noisy(1e-3, seed=seed),
                                          _noisy(1.15e-3, seed=seed + 100), drift=0.0)
        assert verdict["verdict"] == "slower", (seed, verdict)
        assert 1.10 < verdict["ratio"] < 1.20


def test_a_lone_row_must_pass_the_threshold_plus_the_rerun_drift():
    old = _noisy(1e-3, seed=1)
    assert compare.compare_samples(old, _noisy(1.15e-3, seed=2))["verdict"] == "same"
    assert compare.compare_samples(old, _noisy(1.3e-3, seed=3))["verdict"] == "slower"


def test_slow_outliers_raising_the_median_do_not_cry_wolf():
    # 16 of 30 calls of the new run hit a busy moment (x1.3): the median moves past 10%,
    # the lower quartile does not, so this is noise, not slower code.
    old, new = _noisy(1e-3, seed=1), _noisy(1e-3, seed=2, spikes=16, spike=1.3)
    assert np.median(new) / np.median(old) > 1.10
    assert compare.compare_samples(old, new)["verdict"] == "same"


def test_a_slowdown_within_wide_noise_is_not_claimed():
    old, new = _noisy(1e-3, n=5, noise=0.3, seed=3), _noisy(1.15e-3, n=5, noise=0.3, seed=4)
    verdict = compare.compare_samples(old, new)
    assert verdict["interval"][0] < 1 < verdict["interval"][1]
    assert verdict["verdict"] == "same"


def test_faster_is_reported_as_faster():
    assert compare.compare_samples(_noisy(1e-3), _noisy(0.7e-3, seed=5))["verdict"] == "faster"


def test_ratio_interval_brackets_the_true_ratio():
    old, new = _noisy(2e-3, seed=6), _noisy(3e-3, seed=7)
    lo, hi = compare.ratio_interval(old, new)
    assert 1.4 < lo < np.median(new) / np.median(old) < hi < 1.6


def _two_modes(fast, slow, fast_share, n=40, seed=0):
    """Times of a row that jumps between two modes (a parallel region kept or not its
    threads): `fast_share` of them near `fast`, the rest near `slow`."""
    rng = np.random.default_rng(seed)
    fast_count = int(round(fast_share * n))
    times = np.r_[fast * (1 + 0.01 * rng.standard_normal(fast_count)),
                  slow * (1 + 0.01 * rng.standard_normal(n - fast_count))]
    return list(rng.permutation(times))


def test_a_two_mode_row_visiting_its_slow_mode_more_is_not_a_regression():
    # baseline: 30% of the rounds in the fast mode; rerun: 15%. The lower quartile falls
    # from one mode to the other (x1.4); the 10th percentile stays in the fast mode.
    old, new = _two_modes(1e-3, 1.4e-3, 0.30, seed=1), _two_modes(1e-3, 1.4e-3, 0.15, seed=2)
    assert np.percentile(new, 25) / np.percentile(old, 25) > 1.3
    verdict = compare.compare_samples(old, new)
    assert verdict["verdict"] == "same", verdict


def test_a_two_mode_baseline_sets_the_rows_noise_floor():
    # rerun never in the fast mode (8% of the baseline's rounds were): the row's own spread
    # (x1.4 between the modes) is its floor, so landing in the slow mode is not a regression
    old, new = _two_modes(1e-3, 1.4e-3, 0.12, seed=3), _two_modes(1e-3, 1.4e-3, 0.0, seed=4)
    verdict = compare.compare_samples(old, new)
    assert verdict["limit"] == pytest.approx(0.4 + compare.RERUN_DRIFT, abs=0.05)
    assert verdict["verdict"] == "same", verdict
    # the same row slower by far more than its two modes explain is still flagged
    slower = [t * 1.7 for t in _two_modes(1e-3, 1.4e-3, 0.12, seed=5)]
    assert compare.compare_samples(old, slower)["verdict"] == "slower"


def test_a_few_microseconds_on_a_tiny_call_are_not_a_regression():
    # 40 us calls 40% slower: what a tiny call's overhead varies from process to process
    old, new = _noisy(40e-6, noise=0.005, seed=8), _noisy(56e-6, noise=0.005, seed=9)
    verdict = compare.compare_samples(old, new)
    assert verdict["limit"] == pytest.approx(compare.ABSOLUTE_FLOOR / np.percentile(old, 10)
                                             + compare.RERUN_DRIFT)
    assert verdict["verdict"] == "same", verdict
    # ... but twice as slow is flagged, and the floor fades out for longer calls
    assert compare.compare_samples(old, _noisy(80e-6, noise=0.005))["verdict"] == "slower"
    assert compare.row_limit(_noisy(1e-3, noise=0.005), _noisy(1e-3, noise=0.005)) == \
        pytest.approx(0.10 + compare.RERUN_DRIFT)


def test_a_row_within_its_own_spread_is_not_flagged_beyond_it_is():
    old = _noisy(1e-3, noise=0.10, seed=10)  # 10% noise: q75/q10 about 1.2
    assert compare.compare_samples(old, _noisy(1.15e-3, noise=0.10, seed=11))["verdict"] \
        == "same"
    assert compare.compare_samples(old, _noisy(1.6e-3, noise=0.10, seed=12))["verdict"] \
        == "slower"


_draws = itertools.count()


def _run(times, other_load=0.1, noise=0.03, **machine):
    """A pytest-benchmark document: {(group, row): median} with raw data (fresh noise on
    every call, as two runs have)."""
    benchmarks = []
    for (group, row), median in times.items():
        data = _noisy(median, noise=noise, seed=next(_draws))
        kind = "contender" if "." in row else "backend"
        benchmarks.append({"group": group, "name": f"test_grid[quick-{group}-{row}]",
                           "fullname": f"benchmarks/bench_grid.py::test_grid[quick-{group}-{row}]",
                           "extra_info": {"row": row, "kind": kind},
                           "stats": {"median": float(np.median(data)), "iqr": 0.0,
                                     "data": data}})
    info = {"cpu_model": "Xeon", "threads": 2, "numpy": "2.3", "other_load": other_load}
    info.update(machine)
    return {"benchmarks": benchmarks, "machine_info": {"convcore": info}}


ROWS = {("signal2d-n1024-k7-float32-same", "openmp"): 1e-3,
        ("signal2d-n1024-k7-float32-same", "fft"): 2e-3,
        ("signal2d-n256-k7-float32-same", "openmp"): 3e-4,
        ("busy-loaded-n256-k5-random-float32-same", "auto"): 1e-4}


def test_compare_runs_names_only_the_slowed_backend_rows():
    slowed = {key: t * (1.3 if key[1] == "openmp" else 1.0) for key, t in ROWS.items()}
    result = compare.compare_runs(_run(ROWS), _run(slowed))
    assert [(g, r) for g, r, _ in result["regressions"]] == [
        ("signal2d-n1024-k7-float32-same", "openmp"), ("signal2d-n256-k7-float32-same", "openmp")]
    assert compare.exit_code(result) == 1
    assert "REGRESSION" in "\n".join(compare.format_result(result))


def test_compare_runs_passes_unchanged_code_and_does_not_gate_the_busy_group():
    twice_as_busy = {key: t * (2.0 if key[0].startswith("busy") else 1.0)
                     for key, t in ROWS.items()}
    result = compare.compare_runs(_run(ROWS), _run(twice_as_busy))
    assert result["regressions"] == [] and compare.exit_code(result) == 0
    assert any("not gated" in v["verdict"] for _, _, v in result["rows"])


def test_the_regret_family_is_reported_not_gated():
    # no contenders in a regret group: a burst of someone else's work there looks like code
    rows = {("regret-10000-k256-float64-same", "fft"): 2e-4,
            ("regret-10000-k256-float64-same", "openmp"): 3e-4}
    result = compare.compare_runs(_run(rows), _run({k: t * 1.3 for k, t in rows.items()}))
    assert result["regressions"] == []
    assert {v["verdict"] for _, _, v in result["rows"]} == {"slower (not gated)"}


CONTROLLED = {("signal2d-n1024-k7-float32-same", "openmp"): 1e-3,
              ("signal2d-n1024-k7-float32-same", "cv2.filter2D"): 2e-3,
              ("signal2d-n1024-k7-float32-same", "scipy.signal.convolve"): 3e-3,
              ("signal2d-n256-k7-float32-same", "openmp"): 3e-4,
              ("signal2d-n256-k7-float32-same", "cv2.filter2D"): 3e-4,
              ("signal2d-n256-k7-float32-same", "scipy.signal.convolve"): 6e-4}


def test_a_group_slowed_with_its_contenders_is_the_machine_not_the_code():
    # one group measured at a busy moment: its contenders (the controls) slowed by as much
    slowed = {key: t * (1.3 if key[0].startswith("signal2d-n256") else 1.0)
              for key, t in CONTROLLED.items()}
    result = compare.compare_runs(_run(CONTROLLED), _run(slowed))
    assert result["regressions"] == [] and compare.exit_code(result) == 0


def test_a_backend_slowed_past_its_controls_is_flagged():
    slowed = {key: t * (1.3 if key[1] == "openmp" else 1.0) for key, t in CONTROLLED.items()}
    result = compare.compare_runs(_run(CONTROLLED), _run(slowed))
    assert sorted(r for _, r, _ in result["regressions"]) == ["openmp", "openmp"]
    assert compare.exit_code(result) == 1


def test_a_one_thread_row_is_judged_against_the_one_thread_controls():
    # the two-thread contender lost its second thread for a while (x1.7), the one-thread
    # one did not notice; openmp@1, 30% slower, is slower than its one-thread control
    # explains, though not slower than the group's two controls together (x1.35) do
    group = "threads-signal2d-n1024-k7-float32-same"
    times = {(group, "openmp@1"): 2e-3, (group, "openmp@2"): 1e-3,
             (group, "cv2.filter2D@1"): 3e-3, (group, "cv2.filter2D@2"): 1.6e-3}
    new = dict(times)
    new[(group, "openmp@1")] *= 1.3
    new[(group, "cv2.filter2D@2")] *= 1.7
    result = compare.compare_runs(_run(times), _run(new))
    assert [r for _, r, _ in result["regressions"]] == ["openmp@1"]


def test_a_machine_halved_by_another_process_is_refused():
    halved = {key: t * 2 for key, t in CONTROLLED.items()}
    result = compare.compare_runs(_run(CONTROLLED), _run(halved))
    assert "not comparable" in result["not_comparable"] and compare.exit_code(result) == 3


def test_a_regression_counts_only_when_measured_again():
    slowed = {key: t * (1.3 if key[1] == "openmp" else 1.0) for key, t in CONTROLLED.items()}
    first = compare.compare_runs(_run(CONTROLLED), _run(slowed))
    unconfirmed = compare.confirm(first, compare.compare_runs(_run(CONTROLLED),
                                                              _run(CONTROLLED)))
    assert unconfirmed["regressions"] == [] and compare.exit_code(unconfirmed) == 0
    first = compare.compare_runs(_run(CONTROLLED), _run(slowed))
    confirmed = compare.confirm(first, compare.compare_runs(_run(CONTROLLED), _run(slowed)))
    assert len(confirmed["regressions"]) == 2


def test_a_busier_machine_is_refused_not_passed():
    result = compare.compare_runs(_run(ROWS, other_load=0.05), _run(ROWS, other_load=0.55))
    assert result["not_comparable"] and "busier" in result["not_comparable"]
    assert compare.exit_code(result) == 3


def test_a_slower_parallel_probe_is_refused():
    quiet, busy = _run(ROWS, parallel_probe_seconds=0.010), _run(ROWS,
                                                                  parallel_probe_seconds=0.016)
    result = compare.compare_runs(quiet, busy)
    assert "every core hashing at once took 1.60x" in result["not_comparable"]
    assert compare.exit_code(result) == 3
    # the probe's best of the run's start and end counts: one noisy end is not refused
    noisy_end = _run(ROWS, parallel_probe_seconds=0.016,
                     at_start={"parallel_probe_seconds": 0.0105})
    assert compare.compare_runs(quiet, noisy_end)["not_comparable"] is None
    # a run probed before every group is judged on the median of its samples
    sampled = _run(ROWS, parallel_probe_seconds=0.0125, parallel_probe_samples=30,
                   at_start={"parallel_probe_seconds": 0.008})
    assert compare.compare_runs(quiet, sampled)["not_comparable"] is None
    sampled = _run(ROWS, parallel_probe_seconds=0.0135, parallel_probe_samples=30,
                   at_start={"parallel_probe_seconds": 0.008})
    assert "1.35x" in compare.compare_runs(quiet, sampled)["not_comparable"]


def test_threads_waiting_longer_for_a_cpu_are_refused():
    result = compare.compare_runs(_run(ROWS, wait_share=0.10), _run(ROWS, wait_share=0.40))
    assert "waited for a CPU 40% of their time against 10%" in result["not_comparable"]
    assert compare.compare_runs(_run(ROWS, wait_share=0.10),
                                _run(ROWS, wait_share=0.20))["not_comparable"] is None


def test_a_baseline_from_a_busier_machine_is_named():
    result = compare.compare_runs(_run(ROWS, wait_share=0.55), _run(ROWS, wait_share=0.2))
    assert result["not_comparable"] is None and compare.exit_code(result) == 0
    assert "baseline was saved on a busier machine" in "\n".join(
        compare.format_result(result))


def test_a_whole_backend_slower_than_the_others_is_flagged_by_its_rows_median():
    # every openmp row 12% slower: within each row's noise (20% spread), not beyond it,
    # but the median over its rows stands out from the other backends' rows
    rows = {}
    for k in range(8):
        group = f"signal2d-n1024-k{k}-float32-same"
        rows.update({(group, "openmp"): 1e-3, (group, "fft"): 2e-3, (group, "im2col"): 3e-3})
    slowed = {key: t * (1.12 if key[1] == "openmp" else 1.0) for key, t in rows.items()}
    result = compare.compare_runs(_run(rows, noise=0.08), _run(slowed, noise=0.08))
    assert result["regressions"] == []
    assert result["backend_regressions"] == ["openmp"] and compare.exit_code(result) == 1
    text = "\n".join(compare.format_result(result))
    assert "backend openmp: the median of its 8 rows is +1" in text
    assert "fft" not in text.split("REGRESSION", 1)[1]
    # unchanged code: no backend stands out
    result = compare.compare_runs(_run(rows, noise=0.08), _run(rows, noise=0.08))
    assert result["backend_regressions"] == [] and compare.exit_code(result) == 0


def test_a_baseline_from_a_saturated_machine_is_not_compared_with_an_idle_one():
    result = compare.compare_runs(_run(ROWS, wait_share=0.55), _run(ROWS, wait_share=0.03))
    assert "saved on a saturated machine" in result["not_comparable"]
    assert compare.exit_code(result) == 3 and result["quieter"] is None


def test_parallel_contenders_slowed_alone_mean_a_busier_machine():
    # another process takes one core of two: the single-threaded contenders hardly notice,
    # the ones that use both cores wait for their second thread
    rows = dict(CONTROLLED)
    rows.update({(group, "scipy.ndimage.convolve"): 3e-3 for group, _ in CONTROLLED})
    slowed = {key: t * (1.6 if key[1] == "cv2.filter2D" else 1.0) for key, t in rows.items()}
    result = compare.compare_runs(_run(rows), _run(slowed))
    assert result["machine_factor"] < 1 + compare.BUSIER_RATIO
    assert result["parallel_factor"] == pytest.approx(1.6, rel=0.05)
    assert "contenders that use every core" in result["not_comparable"]
    assert compare.exit_code(result) == 3


def test_the_refusal_names_every_signal_seen():
    why = compare.not_comparable({"wait_share": 0.1, "other_load": 0.2,
                                  "parallel_probe_seconds": 0.01},
                                 {"wait_share": 0.5, "other_load": 0.7,
                                  "parallel_probe_seconds": 0.02}, parallel_factor=1.5)
    for part in ("hashing", "waited", "other processes used 70%", "1.50x", "rerun"):
        assert part in why


def test_different_settings_are_named():
    result = compare.compare_runs(_run(ROWS), _run(ROWS, threads=1, numpy="2.4"))
    text = "\n".join(compare.format_result(result))
    assert "differ in threads" in text and "differ in numpy" in text


def test_ab_pair_ratios_and_verdicts():
    rng = np.random.default_rng(0)
    a, b = [], []
    for _ in range(4):
        drift = 1 + 0.2 * rng.random()  # the machine's speed drifts; pairs share it
        a.append({"same": _noisy(1e-3 * drift, n=7), "slow": _noisy(1e-3 * drift, n=7)})
        b.append({"same": _noisy(1e-3 * drift, n=7, seed=9),
                  "slow": _noisy(1.15e-3 * drift, n=7, seed=9)})
    ratios = ab.pair_ratios(a, b)
    marks = ab.verdicts(ratios, 0.10)
    assert marks == {"same": "same", "slow": "slower"}
    ratio, low, high, pairs = ratios["slow"]
    assert low < ratio < high and pairs == 4


def test_report_speedups_ratios_and_unavailable_rows():
    run = _run(ROWS)
    run["benchmarks"].append({"group": "signal2d-n1024-k7-float32-same", "name": "n",
                              "extra_info": {"row": "naive", "kind": "backend"},
                              "stats": {"median": 0.1, "iqr": 0.01}})
    run["benchmarks"].append({"group": "signal2d-n1024-k7-float32-same", "name": "a",
                              "extra_info": {"row": "auto", "kind": "auto",
                                             "auto_choice": "openmp"},
                              "stats": {"median": 1.1e-3, "iqr": 0.0}})
    missing = {"benchmarks/bench_grid.py::test_grid[quick-signal2d-n1024-k7-float32-same-"
               "cv2.filter2D]": "absent: opencv (cv2) is not installed"}
    groups = report.build(run["benchmarks"], missing)
    group = next(g for g in groups if g["group"] == "signal2d-n1024-k7-float32-same")
    rows = {r["row"]: r for r in group["rows"]}
    assert rows["openmp"]["vs_naive"] == pytest.approx(0.1 / rows["openmp"]["median"])
    assert rows["fft"]["of_fastest"] == pytest.approx(rows["fft"]["median"]
                                                      / rows["openmp"]["median"])
    assert group["auto_choice"] == "openmp" and group["fastest"] == "openmp"
    assert group["regret"] == pytest.approx(1.1e-3 / rows["openmp"]["median"])
    assert group["unavailable"] == [("cv2.filter2D", "absent: opencv (cv2) is not installed")]
    text, md = report.text(groups), report.markdown(groups)
    assert "absent: opencv" in text and "| openmp |" in md and "p99" in text


def test_split_test_id():
    assert report.split_test_id("b.py::test_grid[quick-signal1d-n1e6-k16-float64-same-"
                                "numpy.convolve]") == ("signal1d-n1e6-k16-float64-same",
                                                       "numpy.convolve")
