"""A pytest plugin that puts convcore in place of SciPy's convolution functions.

Loaded into a run of SciPy's own suite (``python -m pytest --pyargs scipy.signal -p
scipy_signal_shim``, this folder on ``PYTHONPATH``) by ``test_scipy_signal_suite.py``. At
``pytest_configure`` (before any test module imports ``from scipy.signal import convolve``)
every loaded ``scipy`` module attribute that *is* one of SciPy's seven functions is replaced by
convcore's, so SciPy's internal callers (``_signaltools.correlate`` -> ``convolve``,
``_wavelets.cwt``, ``wiener``, ``deconvolve``, ``resample``, ...) reach convcore too.

Environment:

``CONVCORE_SHIM``
    ``convcore`` (default): replace; ``off``: SciPy alone (the baseline); ``broken``: a
    deliberately wrong replacement (every result off by one part in a thousand), which the
    harness must catch.
``CONVCORE_SHIM_REPORT``
    A file to write ``{absolute nodeid: outcome}`` to at the end of the session (JSON); an
    outcome is ``failed`` when any phase (setup, call, teardown) failed.
"""

import importlib
import json
import os
import pkgutil
import sys

NAMES = ("convolve", "correlate", "fftconvolve", "oaconvolve", "convolve2d", "correlate2d",
         "choose_conv_method")


def _broken(function):
    def wrong(*args, **kwargs):
        out = function(*args, **kwargs)
        return out * 1.001 + 1 if hasattr(out, "dtype") and out.dtype.kind in "fc" else out

    wrong.__name__ = function.__name__
    return wrong


def install(mode="convcore"):
    """Replace SciPy's seven functions everywhere in ``scipy``; return the replaced places."""
    import scipy.signal
    import scipy.signal._signaltools as signaltools

    import convcore

    for info in pkgutil.walk_packages(scipy.signal.__path__, "scipy.signal."):
        if ".tests" not in info.name:
            importlib.import_module(info.name)
    originals = {}
    for name in NAMES:
        for source in (scipy.signal, signaltools):
            originals[id(getattr(source, name))] = name
    replacements = {name: getattr(convcore, name) for name in NAMES}
    if mode == "broken":
        replacements = {name: _broken(f) for name, f in replacements.items()}
    # SciPy's tests decorate with make_xp_test_case(convolve), which looks the function up
    # in the array-API capabilities table: the replacement inherits SciPy's entry.
    from scipy._lib._array_api import xp_capabilities_table

    for name in NAMES:
        entry = xp_capabilities_table.get(getattr(scipy.signal, name))
        if entry is not None:
            xp_capabilities_table[replacements[name]] = entry
    places = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("scipy") or module is None:
            continue
        for attribute, value in list(vars(module).items()):
            name = originals.get(id(value))
            if name is not None and attribute == name:
                setattr(module, attribute, replacements[name])
                places.append(f"{module_name}.{attribute}")
    return places


def pytest_configure(config):
    mode = os.environ.get("CONVCORE_SHIM", "convcore")
    if mode not in ("convcore", "off", "broken"):
        raise ValueError(f"CONVCORE_SHIM must be 'convcore', 'off' or 'broken', got {mode!r}")
    config._convcore_outcomes = {}
    if mode != "off":
        places = install(mode)
        required = {"scipy.signal._signaltools.convolve", "scipy.signal._wavelets.convolve",
                    "scipy.signal.convolve", "scipy.signal.choose_conv_method"}
        missing = required - set(places)
        if missing:  # SciPy moved them: a run that silently tests SciPy would prove nothing
            raise RuntimeError(f"convcore shim: could not replace {sorted(missing)}")
        config._convcore_places = places


def pytest_report_header(config):
    places = getattr(config, "_convcore_places", None)
    if places is None:
        return "convcore shim: off (SciPy alone)"
    return f"convcore shim: {os.environ.get('CONVCORE_SHIM', 'convcore')} in {len(places)} places"


def pytest_runtest_logreport(report):
    outcomes = _CONFIG[0]._convcore_outcomes if _CONFIG else None
    if outcomes is None:
        return
    # Absolute ids, so a later run from any directory can select the same test again.
    # (a node id is relative to a rootdir that depends on how the run was invoked).
    path = os.path.normpath(os.path.join(_CONFIG[0].rootpath, report.location[0]))
    nodeid = path + "::" + report.nodeid.split("::", 1)[1]
    previous = outcomes.get(nodeid)
    if report.failed:
        outcomes[nodeid] = "failed"
    elif previous != "failed" and (report.when == "call" or report.skipped):
        outcomes[nodeid] = "skipped" if report.skipped else "passed"


_CONFIG = []


def pytest_sessionstart(session):
    _CONFIG[:] = [session.config]


def pytest_sessionfinish(session):
    path = os.environ.get("CONVCORE_SHIM_REPORT")
    if path and not hasattr(session.config, "workerinput"):  # the xdist controller writes
        with open(path, "w") as file:
            json.dump(session.config._convcore_outcomes, file, indent=0, sort_keys=True)
