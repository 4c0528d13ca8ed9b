"""The cost models' calibration (docs/design.md, "Calibration"): a valid file's values reach
``cost()`` and ``explain``; a stale or corrupt one is refused with a warning and the defaults
are used; ``convcore calibrate`` runs end to end. No timing is asserted: only where values
come from and go."""

import json
import math
import warnings

import numpy as np
import pytest

import convcore
from convcore.engine import calibration as _calibration
from convcore.__main__ import main
from convcore.cli.calibrate import Fit
from convcore.engine.context import current_context
from convcore.engine.problem import build_problem

naive = convcore.get_backend("naive")
from convcore.backends.naive import machine as naive_constants  # noqa: E402

DEFAULT = naive_constants.defaults["SECONDS_PER_MAC"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder of the test's own; nothing read from it yet."""
    monkeypatch.setenv("CONVCORE_CACHE_DIR", str(tmp_path))
    _calibration.reload()
    yield tmp_path
    _calibration.reload()


def naive_problem():
    return build_problem(np.ones(1000), np.ones(10), "full", "convolve")[2]


def naive_cost():
    return naive.cost(naive_problem(), current_context())


def write(values=None, **changes):
    """A valid calibration of naive (SECONDS_PER_MAC 3x its default), then `changes` applied
    to the stored JSON document: ``{"key.cpu": "other"}``-style paths."""
    path = _calibration.save({"naive": values or {"SECONDS_PER_MAC": 3 * DEFAULT}})
    with open(path) as f:
        document = json.load(f)
    for where, value in changes.items():
        node = document
        *parents, last = where.split(".")
        for name in parents:
            node = node[name]
        node[last] = value
    with open(path, "w") as f:
        json.dump(document, f)
    _calibration.reload()
    return path


def test_without_a_file_the_defaults_are_used(cache):
    assert naive_constants.values()["SECONDS_PER_MAC"] == DEFAULT
    text = convcore.explain(np.ones(100), np.ones(5))
    assert "cost constants: defaults fitted on the development machine" in text


def test_a_valid_file_reaches_cost_and_explain(cache):
    before = naive_cost()
    path = write()
    after = naive_cost()
    assert math.isclose(after - before, naive_problem().macs * 2 * DEFAULT, rel_tol=1e-9)
    text = convcore.explain(np.ones(100), np.ones(5))
    assert "cost constants: calibrated on this machine" in text and path in text
    assert "naive" in text and "SECONDS_PER_MAC x3" in text


def test_the_file_is_read_once(cache):
    path = write()
    calibrated = naive_cost()
    path_obj = cache / path.rsplit("/", 1)[-1]
    path_obj.unlink()
    assert naive_cost() == calibrated  # values kept: no read per call


def test_a_written_calibration_replaces_plans_made_before(cache):
    x, k = np.ones((64, 64)), np.ones((3, 3))
    convcore.convolve(x, k)
    write()
    assert "SECONDS_PER_MAC x3" in convcore.explain(x, k)


CORRUPT = {
    "not JSON": ("text", "not valid JSON"),
    "wrong schema": ({"schema": 99}, "schema 99"),
    "not a number": ({"backends.naive.values.SECONDS_PER_MAC": "fast"}, "not a number"),
    "NaN": ({"backends.naive.values.SECONDS_PER_MAC": float("nan")}, "not a finite positive"),
    "negative": ({"backends.naive.values.SECONDS_PER_MAC": -1e-9}, "not a finite positive"),
    "zero": ({"backends.naive.values.SECONDS_PER_MAC": 0}, "not a finite positive"),
    "absurd": ({"backends.naive.values.SECONDS_PER_MAC": 1000 * DEFAULT}, "100x away"),
    "unknown constant": ({"backends.naive.values.SECONDS_PER_NOTHING": 1.0}, "not a constant"),
    "malformed section": ({"backends.naive": [1, 2]}, "malformed section"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_a_corrupt_file_is_refused(cache, case):
    change, message = CORRUPT[case]
    path = write()
    if change == "text":
        with open(path, "w") as f:
            f.write('{"schema": 1, "key": ')
        _calibration.reload()
    else:
        write(**change)
    with pytest.warns(convcore.CalibrationWarning, match=message):
        cost = naive_cost()
    assert naive_constants.values()["SECONDS_PER_MAC"] == DEFAULT
    assert math.isclose(cost, naive_cost())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process: no second warning
        text = convcore.explain(np.ones(100), np.ones(5))
    assert "defaults fitted on the development machine" in text and "ignored" in text


# Another instruction set than this build's (the test machines include AVX-512 ones).
OTHER_ISA = "sse2" if _calibration.machine_key()["isa"] != "sse2" else "avx512"
FOREIGN = {
    "key.cpu": ("Some Other CPU 9000", "another CPU"),
    "key.isa": (OTHER_ISA, "another instruction set"),
    "key.convcore": ("0.0.1", "another convcore version"),
    "key.build": ({"openmp": False, "compile_args": ["-O0"], "portable": True, "march": None},
                  "other build flags"),
}


@pytest.mark.parametrize("field", sorted(FOREIGN))
def test_a_foreign_file_is_refused(cache, field):
    value, message = FOREIGN[field]
    write(**{field: value})
    with pytest.warns(convcore.CalibrationWarning, match=message):
        naive_cost()
    assert naive_constants.values()["SECONDS_PER_MAC"] == DEFAULT
    assert "defaults fitted on the development machine" in convcore.explain(np.ones(9),
                                                                            np.ones(3))


def test_a_file_made_against_other_defaults_is_refused(cache):
    write(**{"backends.naive.defaults.SECONDS_PER_MAC": DEFAULT / 2})
    with pytest.warns(convcore.CalibrationWarning, match="other defaults"):
        naive_cost()
    assert naive_constants.values()["SECONDS_PER_MAC"] == DEFAULT


def test_a_warning_raised_as_an_error_leaves_the_defaults(cache):
    write(**{"key.cpu": "Some Other CPU 9000"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(convcore.CalibrationWarning):
            naive_cost()
        # the file is not read again, and the warning is not given twice
        assert naive_constants.values()["SECONDS_PER_MAC"] == DEFAULT


def test_calibrate_end_to_end(cache, capsys):
    assert main(["calibrate", "--quick"]) == 0
    out = capsys.readouterr().out
    written = sorted(cache.glob("calibration-*.json"))
    assert len(written) == 1 and str(written[0]) in out
    _calibration.reload()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the next load accepts it
        text = convcore.explain(np.ones((64, 64)), np.ones((5, 5)))
    assert "calibrated on this machine" in text
    document = json.loads(written[0].read_text())
    assert document["quick"] and document["measurements"]
    calibrated = [name for name in convcore.list_backends()
                  if _calibration.declared(name) is not None]
    assert set(document["backends"]) <= set(calibrated)
    assert "naive" in document["backends"]


def test_calibrate_reports_a_failing_backend_and_keeps_going(cache, monkeypatch):
    def broken(ctx, timer):
        raise RuntimeError("no such instrument")

    monkeypatch.setattr(naive, "calibrate", broken)
    result = convcore.calibrate(quick=True, progress=False)
    assert "no such instrument" in result["errors"]["naive"]
    assert "naive" not in result["constants"]


# --- the fit, on a model whose answer is known ---------------------------------------------

@pytest.fixture
def toy():
    constants = _calibration.Constants("toy", {"RATE": 2.0, "PER": {"a": 1.0, "b": 3.0},
                                               "TABLE": ((1, 10.0), (4, 20.0))})
    constants.__dict__.update(constants.defaults)  # resolved: nothing read from a file
    return constants


def test_fit_meets_the_measurement(toy):
    fit = Fit(toy)
    fit.solve("RATE", lambda: 5.0 + 100 / toy.RATE, 45.0)  # 100 / RATE = 40: RATE = 2.5
    fit.solve("PER", lambda: 2 * toy.PER["b"], 12.0, key="b")
    fit.solve("TABLE", lambda: toy.TABLE[1][1], 40.0)
    values = fit.finish()
    assert math.isclose(values["RATE"], 2.5, rel_tol=1e-6)
    assert values["PER"]["a"] == 1.0 and math.isclose(values["PER"]["b"], 6.0, rel_tol=1e-6)
    assert values["TABLE"][0] == (1, pytest.approx(20.0)) and values["TABLE"][1][0] == 4
    assert toy.RATE == 2.0  # trials leave the constants as they were


def test_fit_keeps_the_value_the_model_cannot_meet(toy):
    fit = Fit(toy)
    fit.solve("RATE", lambda: 5.0 + 100 / toy.RATE, 1.0)  # below the fixed 5.0
    assert fit.finish() == {} and fit.not_fitted == ["toy.RATE"]


def test_fit_stops_at_a_physical_bound(toy):
    fit = Fit(toy)
    fit.solve("RATE", lambda: 100 / toy.RATE, 10.0, bounds=(1.0, 4.0))  # wants RATE = 10
    assert fit.finish()["RATE"] == pytest.approx(4.0) and not fit.not_fitted


def test_constants_are_read_only(toy):
    with pytest.raises(AttributeError):
        toy.RATE = 3.0
    with pytest.raises(AttributeError, match="NOTHING"):
        toy.NOTHING


def test_thread_scaling_is_not_fitted_on_a_busy_machine(cache, monkeypatch):
    from convcore.cli import calibrate as _calibrate

    monkeypatch.setattr(_calibrate, "other_load", lambda start, end: 0.9)
    result = convcore.calibrate(quick=True, threads=2, progress=False)
    assert any(name.startswith("openmp.PARALLEL_EFFICIENCY") for name in
               result["not_fitted_busy"])
    assert "PARALLEL_EFFICIENCY" not in result["constants"].get("openmp", {})
