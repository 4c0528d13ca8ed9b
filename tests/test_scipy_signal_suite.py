"""SciPy's own ``scipy.signal`` test suite, run with convcore in place of its convolutions.

``scipy_signal_shim`` (a pytest plugin in this folder) replaces ``convolve``, ``correlate``,
``fftconvolve``, ``oaconvolve``, ``convolve2d``, ``correlate2d`` and ``choose_conv_method``
wherever SciPy holds them, then the installed SciPy's whole ``scipy.signal`` suite runs in a
subprocess (about 14,000 tests, 1.5 minutes on two busy cores). A test fails the harness when
it fails with convcore and passes again with SciPy alone (the failures are run a second time
without the shim), so a test SciPy itself fails on this machine is not blamed on convcore.

These tests carry the ``scipy_suite`` marker: the everyday command deselects them (pyproject's
``addopts``) and ``.ci/run`` runs them after the README's test command
(``python -m pytest -m scipy_suite``).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.scipy_suite

HERE = pathlib.Path(__file__).resolve().parent

# The one place for a difference from SciPy that is known and justified: SciPy test id (the
# part after ``scipy/signal/``) -> the reason. Such a test may fail with convcore; it is still
# run, and the harness fails when it starts passing (the entry is then stale).
KNOWN_DIFFERENCES = {}


def run_suite(tmp_path, shim, selection, workers=2):
    """Run SciPy tests with the shim in `shim` mode; return ``{absolute nodeid: outcome}``."""
    report = tmp_path / f"outcomes-{shim}-{len(list(tmp_path.iterdir()))}.json"
    env = dict(os.environ, CONVCORE_SHIM=shim, CONVCORE_SHIM_REPORT=str(report),
               PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-p", "scipy_signal_shim", *selection]
    if workers > 1:
        command += ["-n", str(workers)]
    # SciPy's tests run outside this project's pytest configuration (no warnings-as-errors,
    # no doctest collection): from an empty directory, as a user would run them.
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=3600)
    assert report.exists(), f"SciPy's suite did not finish:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    outcomes = json.loads(report.read_text())
    return outcomes, result.stdout


def regressions(tmp_path, shim, selection, workers=2):
    """Tests that fail with the shim in `shim` mode and pass with SciPy alone."""
    outcomes, log = run_suite(tmp_path, shim, selection, workers)
    failed = sorted(test for test, outcome in outcomes.items() if outcome == "failed")
    if not failed:
        return outcomes, [], log
    alone, _ = run_suite(tmp_path, "off", failed, workers=1)
    return outcomes, [test for test in failed if alone.get(test) == "passed"], log


def _short(test):
    return test.split("scipy/signal/", 1)[-1]


def test_scipy_signal_suite_passes_with_convcore(tmp_path):
    outcomes, lost, log = regressions(tmp_path, "convcore", ["--pyargs", "scipy.signal"])
    assert len(outcomes) > 10_000, f"SciPy's suite ran only {len(outcomes)} tests:\n{log[-3000:]}"
    unexplained = [t for t in lost if _short(t) not in KNOWN_DIFFERENCES]
    assert not unexplained, ("tests that pass with SciPy alone fail with convcore:\n"
                             + "\n".join(map(_short, unexplained)) + "\n" + log[-20000:])
    stale = [t for t in KNOWN_DIFFERENCES
             if any(_short(test) == t and outcome == "passed" for test, outcome in outcomes.items())]
    assert not stale, f"listed as known differences but now pass: {stale}"


def test_harness_sees_a_wrong_replacement(tmp_path):
    # Every floating result off by 0.1 % plus one: the harness must report SciPy's tests as
    # lost, both one that calls convolve2d itself and one that reaches convolve through
    # SciPy's internal caller (cwt in scipy.signal._wavelets).
    selection = ["--pyargs", "scipy.signal.tests.test_wavelets",
                 "scipy.signal.tests.test_fir_filter_design", "-k", "Wavelets or firwin_2d"]
    outcomes, lost, _ = regressions(tmp_path, "broken", selection, workers=1)
    assert {_short(t) for t in lost} == {"tests/test_wavelets.py::TestWavelets::test_cwt",
                                         "tests/test_fir_filter_design.py::Testfirwin_2d::"
                                         "test_impulse_response"}, lost
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 5
