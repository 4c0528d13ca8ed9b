"""``convcore bench SUBCOMMAND``: each one parses its options, runs a tiny case and writes what
it promises (no timing is asserted: only that times exist and results were checked)."""

import json
import pathlib
import re

import pytest

from convcore.__main__ import main
from convcore.benchmarks import regret, rounds_busy
from convcore.cli.bench import subcommands

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in subcommands.SUBCOMMANDS:
        assert f"  {name} " in out


@pytest.mark.parametrize("name", sorted(subcommands.SUBCOMMANDS))
def test_each_subcommand_has_its_own_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", name, "--help"])
    assert exit_.value.code == 0
    assert f"convcore bench {name}" in capsys.readouterr().out


def test_a_bad_option_is_refused_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "rounds", "--rounds", "many"])
    assert exit_.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_rounds_prints_a_stamped_markdown_table_and_writes_the_samples(tmp_path, capsys):
    out = tmp_path / "rounds.json"
    # scipy.signal.convolve2d is not a row of signal2d groups: named, it runs beside them
    code = main(["bench", "rounds", "signal2d-n256-k3-float32-same", "--rounds", "2",
                 "--rows", "naive,openmp,scipy.signal.convolve2d", "--json", str(out),
                 "--markdown"])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"^Machine: .+ CPUs, .+\), \d+ threads; convcore .+ at .+; "
                     r"\d{4}-\d\d-\d\d; (quiet|loaded)", text, re.M)
    assert "| group | naive | openmp | scipy.signal.convolve2d |" in text
    line = next(row for row in text.splitlines() if row.startswith("| signal2d-n256-k3"))
    assert line.count("x)") == 2  # openmp's and convolve2d's time over naive's
    samples = json.loads(out.read_text())["signal2d-n256-k3-float32-same"]
    assert set(samples) == {"naive", "openmp", "scipy.signal.convolve2d"}
    assert all(len(v) == 2 and min(v) > 0 for v in samples.values())


def test_rounds_on_cpu_time_says_so_in_its_stamp(capsys):
    code = main(["bench", "rounds", "signal2d-n256-k3-float32-same", "--rounds", "1",
                 "--rows", "openmp@1,cv2.filter2D@1", "--cpu-time", "--markdown"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Times: CPU time of the calling thread." in text
    assert "| group | openmp@1 | cv2.filter2D@1 |" in text


def test_rounds_text_mode_names_rows_that_cannot_run(capsys):
    code = main(["bench", "rounds", "overhead-1d", "--rounds", "1",
                 "--rows", "openmp,separable"])
    assert code == 0
    text = capsys.readouterr().out
    assert "overhead-1d-64-k5-float64-same (1 interleaved rounds, medians)" in text
    assert re.search(r"separable\s+declines", text)


def test_rounds_names_convolution_rows_unavailable_on_the_sgemm_group(capsys):
    # Rows named for the signal groups of the same run do not apply to the matrix product:
    # reported, not run (and not a crash).
    code = main(["bench", "rounds", "sgemm", "--rounds", "1", "--rows",
                 "openmp,cv2.filter2D@1"])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"openmp\s+not a row of sgemm-4096-float32", text)
    assert re.search(r"cv2.filter2D@1\s+not a row of sgemm-4096-float32", text)


def test_regret_times_auto_and_every_backend_and_writes_each_cell(tmp_path, capsys):
    out = tmp_path / "regret.json"
    code = main(["bench", "regret", "--profile", "quick", "256x256-k3x3", "--rounds", "2",
                 "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "Times: CPU time of the calling thread, one thread." in text
    assert re.search(r"^regret-256x256-k3x3-float32-same +\d+\.\d{3} \(rounds .*auto: \w+",
                     text, re.M)
    assert re.search(r"^grid: 1 cells, median \d\.\d{3}, max \d\.\d{3}$", text, re.M)
    cell = json.loads(out.read_text())["regret-256x256-k3x3-float32-same"]
    assert len(cell["rounds"]) == 2 and cell["regret"] > 0
    assert "auto@1" in cell["least"] and "openmp@1" in cell["least"]
    assert all(len(v) == 2 and min(v) > 0 for v in cell["least"].values())
    # separable declines a random 3 x 3 kernel (rank 3): named with its reason, not timed
    assert "separable@1" in cell["notes"] and "separable@1" not in cell["least"]


def test_regret_compares_each_round_with_its_own_fastest_backend():
    least = {"auto@1": [2.0, 3.0, 5.0], "openmp@1": [2.0, 2.0, 4.0],
             "fft@1": [1.0, 3.0, 5.0]}
    value, per_round, fastest = regret.regret(least)
    assert per_round == [2.0, 1.5, 1.25]  # round 1's best is fft, rounds 2 and 3 openmp's
    assert value == 1.5
    assert fastest == "openmp@1"  # by the median over rounds: 2.0 against fft's 3.0


def test_regret_refuses_a_cell_that_is_not_in_the_profile(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "regret", "--profile", "quick", "untuned"])
    assert exit_.value.code == 2
    assert "no regret cell of the quick profile" in capsys.readouterr().err


def test_busy_writes_its_summary_and_shows_it_again(tmp_path, capsys, monkeypatch):
    pytest.importorskip("cv2")
    monkeypatch.setattr(rounds_busy, "IDLE_SECONDS", 0.01)
    out = tmp_path / "busy.json"
    code = main(["bench", "busy", "--mode", "quiet", "--cells", "256^2 k5", "--rounds", "1",
                 "--calls", "3", "--gap", "0", "--json", str(out)])
    assert code == 0
    assert "## quiet (ms per call" in capsys.readouterr().out
    table = json.loads(out.read_text())["quiet"]["256^2 k5"]
    assert set(table) == set(rounds_busy.CONTENDERS)
    assert all(table[who]["p99"] >= table[who]["median"] > 0 for who in table)
    assert main(["bench", "busy", "--show", str(out)]) == 0
    assert "| 256^2 k5 |" in capsys.readouterr().out


def test_busy_refuses_an_unknown_cell(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "busy", "--cells", "3^2 k1"])
    assert exit_.value.code == 2


def test_first_calls_times_both_libraries_in_fresh_processes(capsys):
    code = main(["bench", "first-calls", "--rounds", "1", "--workloads", "images",
                 "--shapes", "2"])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"images\s+scipy\s+[\d.]+", text)
    assert re.search(r"images\s+convcore\s+[\d.]+", text)
    assert "images     speed-up over SciPy: first pass" in text


def test_peak_memory_reports_both_rises(capsys):
    code = main(["bench", "peak-memory", "--rows", "200", "--cols", "200", "--repeats", "1"])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"scipy\s+median\s+-?[\d.]+", text)
    assert "convcore / scipy:" in text


def test_nn_prints_each_asked_ratio(capsys):
    pytest.importorskip("torch")
    code = main(["bench", "nn", "--rounds", "1", "--ops", "unshared_forward", "tiled_forward"])
    assert code == 0
    text = capsys.readouterr().out
    assert re.search(r"unshared_forward\s+convcore\s+[\d.]+ ms\s+einsum", text)
    assert re.search(r"tiled_forward .* ratio\s+[\d.]+x", text)
    assert "max_pool2d" not in text


def test_nn_runs_layer_rows_on_the_asked_threads(capsys):
    """The layers issue's table (``--ops layers`` or single rows), each row checked against
    its float64 reference before it is timed."""
    pytest.importorskip("torch")
    code = main(["bench", "nn", "--rounds", "1", "--threads", "1", "--ops",
                 "depthwise3x3_C64_56", "conv_transpose2d"])
    assert code == 0
    text = capsys.readouterr().out
    assert "threads 1" in text
    assert re.search(r"depthwise3x3_C64_56\s+convcore\s+[\d.]+ ms\s+torch", text)
    assert re.search(r"conv_transpose2d .* ratio\s+[\d.]+x \(target >= 1.0", text)
    assert "resnet" not in text


def test_nn_busy_mode_times_rows_beside_a_competitor(capsys):
    pytest.importorskip("torch")
    code = main(["bench", "nn", "--rounds", "1", "--threads", "1", "--busy", "--ops",
                 "depthwise3x3_C64_56"])
    assert code == 0
    text = capsys.readouterr().out
    assert "threads 1, busy" in text
    assert re.search(r"depthwise3x3_C64_56 .* ratio\s+[\d.]+x", text)


def test_dask_runs_a_quick_problem_on_a_local_cluster(capsys):
    pytest.importorskip("distributed")
    pytest.importorskip("dask_image")
    code = main(["bench", "dask", "--quick", "--rounds", "1", "quick-n512-k7"])
    assert code == 0
    assert "dask-image / convcore.dask =" in capsys.readouterr().out


def test_dask_refuses_an_unknown_problem(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "dask", "n3-k1"])
    assert exit_.value.code == 2
    assert "unknown problem" in capsys.readouterr().err


def test_dask_scaling_draws_its_plot(tmp_path, capsys):
    pytest.importorskip("distributed")
    pytest.importorskip("matplotlib")
    out = tmp_path / "scaling.png"
    code = main(["bench", "dask-scaling", str(out), "--side", "256", "--chunks", "128",
                 "--workers", "1", "--rounds", "1"])
    assert code == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 workers, chunks 128^2:" in capsys.readouterr().out


def test_the_suite_has_no_script_entry_points_and_docs_cite_none():
    scripts = [p.name for p in (ROOT / "benchmarks").glob("*.py")
               if '__name__ == "__main__"' in p.read_text()]
    assert scripts == []
    old = re.compile(r"python3? (-m benchmarks\.|benchmarks/\w+\.py)")
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
             *sorted((ROOT / "benchmarks").glob("*.py")),
             *sorted((ROOT / "convcore").rglob("*.py")), *sorted((ROOT / "backends").rglob("*.py"))]
    assert [str(p.relative_to(ROOT)) for p in pages if old.search(p.read_text())] == []
