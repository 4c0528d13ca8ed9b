"""The suite's pytest plugin: profile selection, machine facts, and the speedup report.

Run with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest benchmarks -k quick``
(or ``convcore bench --quick``). At the end of a timed session the speedup report is printed
and written as ``speedup.json`` and ``speedup.md`` (``--bench-report DIR``, default
``.benchmarks/``).
"""

import os

import pytest

_unavailable = {}      # test id -> reason, for rows that did not run
_start_probe = {}
_probes = {"group": None, "seconds": []}   # the parallel probe before every group


def pytest_addoption(parser):
    group = parser.getgroup("convcore benchmarks")
    group.addoption("--bench-report", default=".benchmarks",
                    help="directory for speedup.json and speedup.md (default .benchmarks)")
    group.addoption("--bench-profile", choices=["quick", "full"], default=None,
                    help="with benchmarks disabled (CI, xdist): which profile's bodies run "
                         "(default quick)")


def _timing_disabled(config):
    xdist = config.getoption("dist", "no") != "no" or "PYTEST_XDIST_WORKER" in os.environ
    return xdist or (config.getoption("benchmark_disable")
                     and not config.getoption("benchmark_enable"))


def pytest_collection_modifyitems(config, items):
    """Without timing (CI) run the quick profile's bodies unless --bench-profile full."""
    if not _timing_disabled(config) or config.getoption("bench_profile") == "full":
        return
    here = os.path.dirname(__file__)
    keep, drop = [], []
    for item in items:
        inside = str(item.path).startswith(here)
        (drop if inside and "[full-" in item.nodeid else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_sessionstart(session):
    from convcore.cli.bench import machine

    _unavailable.clear()  # `convcore bench` may run several sessions in one process
    _probes.update(group=None, seconds=[])
    _start_probe["probe_seconds"] = machine.probe()
    _start_probe["parallel_probe_seconds"] = machine.parallel_probe()
    _start_probe["cpu"] = machine.cpu_snapshot()
    _start_probe["waits"] = machine.wait_snapshot()
    _start_probe["load_average"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def pytest_runtest_setup(item):
    """Probe the machine before each group's first row: how much every core gets, sampled
    through the run (its median is saved: a process running all along moves it, a minute
    of someone else's build does not)."""
    problem = getattr(getattr(item, "callspec", None), "params", {}).get("problem")
    if problem is None or _timing_disabled(item.config) or problem.group == _probes["group"]:
        return
    from convcore.cli.bench import machine

    from . import timing

    _probes["group"] = problem.group
    timing.idle_gap()  # the last row's thread pools spin for a while: not another process
    _probes["seconds"].append(machine.parallel_probe(rounds=2))


def pytest_runtest_logreport(report):
    if report.skipped and "test_grid[" in report.nodeid and isinstance(report.longrepr, tuple):
        _unavailable[report.nodeid] = report.longrepr[2].removeprefix("Skipped: ")


def pytest_benchmark_update_machine_info(config, machine_info):
    from convcore.cli.bench import machine

    facts = machine.facts()
    if _probes["seconds"]:
        samples = _probes["seconds"] + [facts["parallel_probe_seconds"],
                                        _start_probe["parallel_probe_seconds"]]
        facts["parallel_probe_seconds"] = sorted(samples)[len(samples) // 2]
        facts["parallel_probe_samples"] = len(samples)
    if "cpu" in _start_probe:
        facts["other_load"] = machine.other_load(_start_probe["cpu"], machine.cpu_snapshot())
        facts["wait_share"], facts["cpu_pressure"] = machine.waited(_start_probe["waits"],
                                                                    machine.wait_snapshot())
    facts["at_start"] = {k: v for k, v in _start_probe.items() if k not in ("cpu", "waits")}
    machine_info["convcore"] = facts


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["convcore_unavailable"] = dict(_unavailable)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    from convcore.cli.bench import report

    benchmarks = [bench.as_dict(include_data=True) for bench in session.benchmarks]
    groups = report.build(benchmarks, _unavailable)
    terminalreporter.section("convcore speedup report")
    terminalreporter.write_line(report.text(groups))
    paths = report.write(groups, config.getoption("bench_report"),
                         machine=session.machine_info.get("convcore")
                         if hasattr(session, "machine_info") else None)
    terminalreporter.write_line("written: " + ", ".join(paths))


# Helpers of the earlier per-backend scripts, kept for scripts run from this folder
# (``python benchmarks/<script>.py`` imports this file as the module ``conftest``).

def seeded(shape, dtype="float32", seed=0):
    """Seeded standard-normal data, as the grid prescribes."""
    import numpy as np

    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close_to(result, reference, dtype):
    """Relative max error against a float64 reference, loose enough for float32 sums."""
    import numpy as np

    scale = np.abs(reference).max() or 1.0
    tolerance = 2e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-9
    error = np.abs(np.asarray(result, dtype=np.complex128) - reference).max() / scale
    assert error <= tolerance, f"relative error {error:.3g} over {tolerance}"


def warm_up(call, seconds=0.1, min_calls=2):
    """Call `call` untimed for at least `seconds` (and `min_calls` times) before timing it."""
    import time

    start = time.perf_counter()
    calls = 0
    while calls < min_calls or time.perf_counter() - start < seconds:
        call()
        calls += 1


def median_time(call, repeats):
    """Median seconds of `repeats` timed calls of `call` (no warm-up: see `warm_up`)."""
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@pytest.fixture
def idle_gap():
    """Let other libraries' thread pools go to sleep before timing (docs/design.md, "Performance notes")."""
    import time

    time.sleep(0.25)
