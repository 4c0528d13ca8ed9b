"""``convcore bench`` / ``convcore plot``: exit codes and messages, fed with synthetic runs
(the suite itself is not run here: its bodies run in CI from ``benchmarks/``)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from convcore.__main__ import main
from convcore.cli.bench import ab, cli, plot, suite
from convcore.benchmarks import contenders

GROUP = "signal2d-n1024-k{}-float32-same"


def _document(slow=1.0, machine_factor=1.0, **machine):
    """A saved run: openmp, auto and two contenders on three kernel sizes."""
    rng = np.random.default_rng(len(machine) + int(slow * 100) + int(machine_factor * 10))
    benchmarks = []
    for k, base in ((7, 1e-3), (15, 2e-3), (31, 4e-3)):
        for row, kind, t in (("openmp", "backend", base * slow), ("fft", "backend", 3e-3),
                             ("auto", "auto", base), ("cv2.filter2D", "contender", 2 * base),
                             ("scipy.signal.convolve", "contender", 5e-3)):
            if kind == "contender":
                t *= machine_factor
            data = list(t * (1 + 0.02 * rng.standard_normal(20)))
            group = GROUP.format(k)
            benchmarks.append({
                "group": group, "name": f"test_grid[quick-{group}-{row}]",
                "fullname": f"bench_grid.py::test_grid[quick-{group}-{row}]",
                "extra_info": {"row": row, "kind": kind,
                               **({"auto_choice": "openmp"} if row == "auto" else {})},
                "stats": {"median": float(np.median(data)), "iqr": 0.0, "mean": t,
                          "data": data}})
    info = {"cpu_model": "Xeon", "threads": 2, "numpy": "2.3", "other_load": 0.1}
    info.update(machine)
    return {"benchmarks": benchmarks, "machine_info": {"convcore": info},
            "convcore_unavailable": {}}


@pytest.fixture
def storage(tmp_path):
    folder = tmp_path / "store" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    (folder / "0001_base.json").write_text(json.dumps(_document()))
    return str(tmp_path / "store")


def _bench(monkeypatch, capsys, storage, new_run, *extra):
    monkeypatch.setattr(suite, "run", lambda *a, **k: (0, new_run, []))
    code = main(["bench", "--compare", "base", "--storage", storage, *extra])
    return code, capsys.readouterr()


def test_missing_baseline_exits_2_and_says_what_is_saved(storage, capsys):
    assert main(["bench", "--compare", "nothere", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert "no saved run named 'nothere'" in err and "saved: base" in err
    assert "convcore bench --save nothere" in err


def test_compare_unchanged_passes_and_writes_the_report(storage, monkeypatch, capsys):
    code, out = _bench(monkeypatch, capsys, storage, _document())
    assert code == 0, out.out
    assert "no regression beyond 10%" in out.out and "openmp" in out.out
    with open(os.path.join(storage, "report", "speedup.json")) as f:
        groups = json.load(f)["groups"]
    assert {g["group"] for g in groups} == {GROUP.format(k) for k in (7, 15, 31)}
    with open(os.path.join(storage, "report", "speedup.md")) as f:
        assert "| cv2.filter2D |" in f.read()


def test_compare_names_the_slowed_rows_and_exits_1(storage, monkeypatch, capsys):
    code, out = _bench(monkeypatch, capsys, storage, _document(slow=1.3))
    assert code == 1
    regressions = out.out.split("REGRESSION", 1)[1]
    assert regressions.count("openmp") == 3 and "fft" not in regressions
    assert "auto" not in regressions


def test_suspect_rows_are_measured_again_in_a_fresh_process(storage, monkeypatch, capsys):
    calls = []

    def run(*args, **kwargs):
        calls.append(kwargs)
        return 0, _document(slow=1.3), []
    monkeypatch.setattr(suite, "run", run)
    assert main(["bench", "--compare", "base", "--storage", storage]) == 1
    first, *again = calls
    assert not first.get("fresh") and len(again) == cli.CONFIRM_PROCESSES
    for each in again:
        assert each["fresh"] is True
        assert sorted(i.rsplit("-", 1)[1] for i in each["node_ids"]) == sorted(
            ["openmp]", "cv2.filter2D]", "scipy.signal.convolve]"] * 3)
    assert "measuring them again" in capsys.readouterr().err


def test_a_row_one_fresh_process_finds_at_its_baseline_speed_is_not_counted(
        storage, monkeypatch, capsys):
    # the first run and the first fresh process slow (the process drew slow memory, say),
    # the second fresh process at the baseline's speed: not a regression of the code
    runs = iter([_document(slow=1.3), _document(slow=1.3), _document()])
    calls = []

    def run(*args, **kwargs):
        calls.append(kwargs)
        return 0, next(runs), []
    monkeypatch.setattr(suite, "run", run)
    assert main(["bench", "--compare", "base", "--storage", storage]) == 0
    assert len(calls) == 3
    out = capsys.readouterr().out
    assert "slower once (not confirmed)" in out and "REGRESSION" not in out


def _probed_storage(tmp_path):
    folder = tmp_path / "store" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    (folder / "0001_base.json").write_text(json.dumps(_document(parallel_probe_seconds=0.010)))
    return str(tmp_path / "store")


def test_a_fresh_process_the_machine_gave_less_neither_confirms_nor_clears(
        tmp_path, monkeypatch, capsys):
    busy = dict(parallel_probe_seconds=0.016)
    # first run slow; the first fresh process slow but on a busier machine (not counted);
    # the second slow on a quiet one (counted); the third at the baseline's speed (clears)
    runs = iter([_document(slow=1.3, parallel_probe_seconds=0.010),
                 _document(slow=1.3, **busy),
                 _document(slow=1.3, parallel_probe_seconds=0.010),
                 _document(parallel_probe_seconds=0.010)])
    monkeypatch.setattr(suite, "run", lambda *a, **k: (0, next(runs), []))
    assert main(["bench", "--compare", "base", "--storage", _probed_storage(tmp_path)]) == 0
    assert next(runs, None) is None


def test_slower_rows_no_fresh_process_could_measure_are_refused(tmp_path, monkeypatch,
                                                               capsys):
    runs = iter([_document(slow=1.3, parallel_probe_seconds=0.010)]
                + [_document(slow=1.3, parallel_probe_seconds=0.016)] * cli.CONFIRM_PROCESSES)
    monkeypatch.setattr(suite, "run", lambda *a, **k: (0, next(runs), []))
    code = main(["bench", "--compare", "base", "--storage", _probed_storage(tmp_path)])
    out = capsys.readouterr().out
    assert code == 3 and "while measuring the slower rows again" in out


def test_compare_refuses_a_busier_machine(storage, monkeypatch, capsys):
    code, out = _bench(monkeypatch, capsys, storage, _document(slow=2.0, machine_factor=2.0))
    assert code == 3 and "NOT COMPARABLE" in out.out


def test_compare_refuses_a_run_whose_parallel_probe_was_slower(tmp_path, monkeypatch,
                                                               capsys):
    # another CPU-bound process on one core of two: timings may even look unchanged (the
    # single-threaded rows keep a core), the probe of every core at once does not
    folder = tmp_path / "store" / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True)
    (folder / "0001_base.json").write_text(json.dumps(_document(
        parallel_probe_seconds=0.010, wait_share=0.05)))
    code, out = _bench(monkeypatch, capsys, str(tmp_path / "store"),
                       _document(parallel_probe_seconds=0.019, wait_share=0.35))
    assert code == 3
    refusal = out.out.split("NOT COMPARABLE: ", 1)[1]
    assert "hashing at once took 1.90x" in refusal and "waited for a CPU 35%" in refusal
    assert "REGRESSION" not in out.out and "no regression" not in out.out


def test_compare_warns_on_a_different_machine(storage, monkeypatch, capsys):
    code, out = _bench(monkeypatch, capsys, storage, _document(cpu_model="EPYC", threads=1))
    assert code == 0
    assert "differ in cpu_model: baseline 'Xeon', this run 'EPYC'" in out.out
    assert "differ in threads" in out.out


def test_bench_help_lists_the_workflow():
    result = subprocess.run([sys.executable, "-m", "convcore", "bench", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    for option in ("--quick", "--save", "--compare", "--ab", "--threshold"):
        assert option in result.stdout


def test_the_suite_is_found_from_the_package():
    assert os.path.exists(os.path.join(suite.suite_dir(), "bench_grid.py"))


def test_ab_refuses_an_unknown_ref(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with pytest.raises(SystemExit, match="cannot export 'no-such-ref-xyz'"):
        ab.build(root, "no-such-ref-xyz", str(tmp_path / "a"), lambda text: None)


def test_plot_writes_png_and_svg_with_the_crossover(tmp_path, monkeypatch):
    document = _document()
    for bench in document["benchmarks"]:  # fft overtakes openmp at k = 31
        if bench["extra_info"]["row"] == "fft" and "k31" in bench["group"]:
            bench["stats"]["median"] = 1e-3
    lines, _, kinds = plot.series(document)
    key = ("signal2d", "1024", "float32", "same")
    assert plot.crossovers(lines[key], kinds) == [(15, 31, "openmp", "fft")]
    paths = plot.plot_run(document, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == [
        "signal2d-n1024-float32-same.png", "signal2d-n1024-float32-same.svg"]
    assert all(os.path.getsize(p) > 1000 for p in paths)


def test_plot_without_a_run_exits_2(tmp_path, capsys):
    assert main(["plot", "--storage", str(tmp_path)]) == 2
    assert "no run" in capsys.readouterr().err


def test_slowdown_hook_wraps_only_the_named_backend(monkeypatch):
    def call():
        return 1

    monkeypatch.setenv(contenders.SLOWDOWN_VARIABLE, "openmp:0.15")
    assert contenders._slowed(call, "openmp") is not call
    assert contenders._slowed(call, "openmp")() == 1
    assert contenders._slowed(call, "fft") is call
    monkeypatch.delenv(contenders.SLOWDOWN_VARIABLE)
    assert contenders._slowed(call, "openmp") is call


def test_ab_worker_times_checked_rows_on_one_thread(tmp_path):
    out = tmp_path / "times.json"
    result = subprocess.run([sys.executable, "-m", "convcore.benchmarks.ab_worker", "--groups",
                             "overhead-1d", "--threads", "1", "--calls", "2", "--out", str(out)],
                            capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    group = "overhead-1d-64-k5-float64-same"
    assert set(document["times"]) == {f"{group}|{r}@1" for r in ("naive", "openmp", "fft",
                                                                 "im2col", "auto")}
    assert all(t > 0 for times in document["times"].values() for t in times)
    assert "declines" in document["unavailable"][f"{group}|separable@1"]


def test_auto_choice_names_a_backend_for_signals_and_layers():
    import convcore
    from convcore.benchmarks import grid

    quick = grid.problems("quick")
    for family in ("signal2d", "cnn", "signal1d"):
        problem = next(p for p in quick if p.family == family)
        assert contenders.auto_choice(problem) in convcore.list_backends(), problem.group
